package redisbroker

import (
	"context"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
)

// TestHubsShareChannel: two nodes (Hubs) on one Redis, each with its
// own Broker and server; a WebSocket client of one and an EventSource
// client of the other get the messages published on both nodes, each
// once and in the brokers' order.
func TestHubsShareChannel(t *testing.T) {
	s := startRedis(t, false)
	var urls []string
	var hubs []*realtime.Hub
	for i := range 2 {
		b := newTestBroker(t, s, nil)
		hub := realtime.NewHub(&realtime.HubOptions{Broker: b, Node: "node" + strconv.Itoa(i)})
		srv := httptest.NewServer(realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{"room"}}, nil))
		t.Cleanup(func() {
			srv.CloseClientConnections()
			srv.Close()
			hub.Close()
		})
		hubs = append(hubs, hub)
		urls = append(urls, srv.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var socks []*client.Socket
	for i, tr := range []client.Transport{client.TransportWebSocket, client.TransportEventSource} {
		c, err := (&client.Dialer{}).Socket(urls[i], &client.SocketOptions{Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for {
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatalf("%v: %v", tr, err)
			}
			if m.Kind == client.KindSubscribed && m.Channel == "room" {
				break
			}
		}
		socks = append(socks, c)
	}
	const n = 20
	for i := range n {
		if _, err := hubs[i%2].Publish(ctx, "room", "m"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range socks {
		for i := 0; i < n; {
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatalf("%v: after %d messages: %v", c.Transport(), i, err)
			}
			if m.Kind != client.KindMessage {
				continue
			}
			if m.Channel != "room" || m.Data != "m"+strconv.Itoa(i) {
				t.Fatalf("%v: message %d: %+v", c.Transport(), i, m)
			}
			i++
		}
	}
}
