// Package brokers opens the realtime.Broker a program's -redis or -nats
// flag names: the chat example and the interop test nodes (rtnode)
// share their channels across processes through it.
package brokers

import (
	"errors"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/natsbroker"
	"github.com/realtime-go/realtime/redisbroker"
)

// Open returns a Redis Streams broker on redisURL (redis://HOST:PORT,
// unix:///PATH), or a NATS JetStream broker on natsURL
// (nats://HOST:PORT) whose connection is called name, or nil when both
// are empty: a Hub given nil makes its own memory broker, for one
// process. Setting both is an error.
func Open(redisURL, natsURL, name string) (realtime.Broker, error) {
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
		b, err := natsbroker.Dial(natsURL, &natsbroker.Options{Name: name})
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, nil
}
