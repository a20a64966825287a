package main

import (
	"errors"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/natsbroker"
	"github.com/realtime-go/realtime/redisbroker"
)

// newBroker opens the broker -redis or -nats names, through which
// several chat processes share their rooms; nil (the Hub's own memory
// broker) when neither is set.
func newBroker(redisURL, natsURL, node string) (realtime.Broker, error) {
	switch {
	case redisURL != "" && natsURL != "":
		return nil, errors.New("-redis and -nats exclude each other")
	case redisURL != "":
		b, err := redisbroker.Open(redisURL, nil)
		if err != nil {
			return nil, err
		}
		return b, nil
	case natsURL != "":
		b, err := natsbroker.Dial(natsURL, &natsbroker.Options{Name: "chat " + node})
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, nil
}
