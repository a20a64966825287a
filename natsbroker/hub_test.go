package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
)

// Three nodes (hubs) share a channel through one nats-server, each with
// a client: every client gets every message once and in one order,
// across a kill -9 and restart of the server; when the server restarts
// empty, each is told.
func TestHubsOverNATS(t *testing.T) {
	s := startServer(t)
	var hubs []*realtime.Hub
	var clients []*client.Socket
	for i := range 3 {
		b := dialBroker(t, s, nil)
		hub := realtime.NewHub(&realtime.HubOptions{Broker: b, Node: fmt.Sprintf("node%d", i)})
		t.Cleanup(func() { hub.Close() })
		srv := httptest.NewServer(realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{"chat"}}, nil))
		t.Cleanup(srv.Close)
		c, err := (&client.Dialer{}).Socket(srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		hubs = append(hubs, hub)
		clients = append(clients, c)
	}
	ctx := testContext(t)
	next := 0 // the next message's number
	// receive checks that every client gets the messages up to next.
	receive := func(from int) {
		t.Helper()
		for i, c := range clients {
			for want := from; want < next; {
				m, err := c.Next(ctx)
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
				if m.Kind != client.KindMessage || m.Channel != "chat" {
					continue
				}
				if m.Data != fmt.Sprintf("m%d", want) {
					t.Fatalf("client %d got %q, want m%d", i, m.Data, want)
				}
				want++
			}
		}
	}
	publish := func(n int) {
		t.Helper()
		for range n {
			hub := hubs[next%len(hubs)]
			err := untilAvailable(func() error {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				_, err := hub.Publish(pctx, "chat", fmt.Sprintf("m%d", next))
				if errors.Is(err, context.DeadlineExceeded) {
					return realtime.ErrBrokerUnavailable
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	// Wait until every client is in the channel: a message published
	// before a client joined would not be missed (it resumes from its
	// join), but the check counts from m0.
	for i, c := range clients {
		for {
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			if m.Kind == client.KindSubscribed || m.ID != "" {
				break
			}
		}
	}
	publish(30)
	receive(0)
	s.Kill()
	s.Start()
	publish(30)
	receive(30)
	// Restarted empty: each client is told its place in the channel
	// was lost, then gets what follows, with no message of the old
	// epoch again.
	s.Wipe()
	for i, c := range clients {
		for {
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			if m.Kind == client.KindMessage {
				t.Fatalf("client %d got %q before the news of the wipe", i, m.Data)
			}
			if m.Channel == "chat" && (m.Kind == client.KindLost || m.Kind == client.KindSubscribed && m.Status == client.SubscribeFailed) {
				break
			}
		}
	}
	publish(10)
	receive(60)
}
