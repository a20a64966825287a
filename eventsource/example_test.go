package eventsource_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/realtime-go/realtime/eventsource"
)

// get opens an EventSource request as a browser would.
func get(url, lastEventID string) *http.Response {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	return resp
}

// A handler that streams a countdown, and a Go client that reads it.
func ExampleAccept() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := eventsource.Accept(w, r, &eventsource.Options{Retry: 3 * time.Second})
		if err != nil {
			return // Accept wrote the error response
		}
		// Once Close returns nothing writes to w, so the handler may
		// return. A handler serving live events would first wait for
		// <-s.Done() while other goroutines send.
		defer s.Close()
		ctx := r.Context()
		for i := 3; i > 0; i-- {
			if err := s.SendData(ctx, fmt.Sprint(i)); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	resp := get(srv.URL, "")
	defer resp.Body.Close()
	fmt.Println(resp.Header.Get("Content-Type"))
	d := eventsource.NewDecoder(resp.Body, nil)
	for {
		ev, err := d.Next()
		if err != nil {
			break
		}
		fmt.Println(ev.Type, ev.Data)
	}
	retry, _ := d.Retry()
	fmt.Println("retry", retry)
	// Output:
	// text/event-stream; charset=utf-8
	// message 3
	// message 2
	// message 1
	// retry 3s
}

// What Send puts on the wire: one data line per line of text.
func ExampleStream_Send() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := eventsource.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer s.Close()
		ctx := r.Context()
		s.Send(ctx, eventsource.Event{Type: "price", ID: "17", Data: "EUR 1.08\r\nUSD 1.00"})
		err = s.Send(ctx, eventsource.Event{ID: "18\nevent: forged", Data: "x"})
		fmt.Println(err)
	}))
	defer srv.Close()

	resp := get(srv.URL, "")
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
	// Output:
	// eventsource: invalid id field: contains a line break
	// event: price
	// id: 17
	// data: EUR 1.08
	// data: USD 1.00
	//
}

// The Decoder applies the browser's parsing rules.
func ExampleDecoder() {
	stream := "\uFEFF: a comment\r\n" +
		"event: greeting\r\n" +
		"id: 1\r\n" +
		"data: hello\r\n" +
		"data:world\r\n" +
		"\r\n" +
		"retry: 2500\n" +
		"data\n" +
		"\n" +
		"id\n" +
		"\n" +
		"data: never dispatched: the stream ends first\n"
	d := eventsource.NewDecoder(strings.NewReader(stream), &eventsource.DecoderOptions{
		OnComment: func(text string) { fmt.Printf("comment %q\n", text) },
	})
	for {
		ev, err := d.Next()
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("%s %q id=%q retry=%v\n", ev.Type, ev.Data, ev.ID, ev.Retry)
	}
	fmt.Printf("last event id %q\n", d.LastEventID())
	// Output:
	// comment " a comment"
	// greeting "hello\nworld" id="1" retry=0s
	// message "" id="1" retry=2.5s
	// EOF
	// last event id ""
}

// A client that reconnects with Last-Event-ID gets what it missed.
func ExampleReplay() {
	history := eventsource.NewHistory(&eventsource.HistoryOptions{MaxHistory: 100, MaxHistoryAge: time.Hour})
	for i := 1; i <= 4; i++ {
		// Add keeps the event and returns it encoded, to be broadcast
		// to the live streams with SendEncoded.
		history.Add(eventsource.Event{ID: fmt.Sprint(i), Data: fmt.Sprint("update ", i)})
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := eventsource.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer s.Close()
		ok, err := eventsource.Replay(r.Context(), s, history)
		if err != nil {
			return
		}
		if !ok {
			// The id is too old or unknown: tell the client to start over.
			s.Send(r.Context(), eventsource.Event{Type: "reset"})
		}
	}))
	defer srv.Close()

	for _, lastID := range []string{"2", "0"} {
		resp := get(srv.URL, lastID)
		d := eventsource.NewDecoder(resp.Body, &eventsource.DecoderOptions{LastEventID: lastID})
		for {
			ev, err := d.Next()
			if err != nil {
				break
			}
			fmt.Printf("after %s: %s %q\n", lastID, ev.Type, ev.Data)
		}
		resp.Body.Close()
	}
	// Output:
	// after 2: message "update 3"
	// after 2: message "update 4"
	// after 0: reset ""
}

// Encode once, send to many streams.
func ExampleEncode() {
	e, err := eventsource.Encode(eventsource.Event{Type: "news", ID: "n-1", Data: "one\ntwo"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", e.Bytes())
	var streams []*eventsource.Stream // the live streams
	for _, s := range streams {
		s.SendEncoded(context.Background(), e)
	}
	// Output:
	// "event: news\nid: n-1\ndata: one\ndata: two\n\n"
}

// AppendEvent encodes into a caller's buffer, allocating nothing once the
// buffer is large enough.
func ExampleAppendEvent() {
	buf := make([]byte, 0, 512)
	buf, err := eventsource.AppendEvent(buf, eventsource.Event{Data: "", Retry: 10 * time.Second})
	fmt.Printf("%q %v\n", buf, err)
	// Output:
	// "retry: 10000\ndata: \n\n" <nil>
}

// A Broker serves every client the events published, and a client that
// reconnects with Last-Event-ID first gets what it missed.
func ExampleBroker() {
	broker := eventsource.NewBroker(&eventsource.BrokerOptions{
		Stream:  eventsource.Options{Retry: 5 * time.Second},
		History: eventsource.NewHistory(nil),
	})
	srv := httptest.NewServer(broker)
	defer srv.Close()
	defer broker.Close() // before srv.Close, which waits for the streams

	for i := 1; i <= 3; i++ {
		broker.Publish(eventsource.Event{ID: fmt.Sprint(i), Data: fmt.Sprint("update ", i)})
	}
	resp := get(srv.URL, "1") // a client that saw event 1 and reconnects
	defer resp.Body.Close()
	for broker.Len() == 0 {
		time.Sleep(time.Millisecond) // until the client is subscribed
	}
	broker.Publish(eventsource.Event{ID: "4", Data: "update 4"})

	d := eventsource.NewDecoder(resp.Body, nil)
	for range 3 {
		ev, err := d.Next()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.ID, ev.Data)
	}
	// Output:
	// 2 update 2
	// 3 update 3
	// 4 update 4
}

// A handler that accepts the stream itself, to check the request or
// pick the broker, and then lets a Broker serve it.
func ExampleBroker_Serve() {
	rooms := map[string]*eventsource.Broker{"news": eventsource.NewBroker(nil)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		broker, ok := rooms[r.URL.Query().Get("room")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		s, err := eventsource.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer s.Close()
		broker.Serve(r.Context(), s) // returns when the client leaves
	}))
	defer srv.Close()
	defer rooms["news"].Close()

	resp := get(srv.URL+"?room=news", "")
	defer resp.Body.Close()
	for rooms["news"].Len() == 0 {
		time.Sleep(time.Millisecond)
	}
	rooms["news"].Publish(eventsource.Event{Type: "headline", Data: "hello"})
	ev, err := eventsource.NewDecoder(resp.Body, nil).Next()
	fmt.Println(ev.Type, ev.Data, err)
	// Output:
	// headline hello <nil>
}

// A publisher that produces faster than clients read waits for room
// instead of having their streams dropped.
func ExampleBroker_Wait() {
	broker := eventsource.NewBroker(nil)
	ctx := context.Background()
	for i := range 1000 {
		if err := broker.Wait(ctx); err != nil {
			return
		}
		broker.Publish(eventsource.Event{ID: fmt.Sprint(i), Data: "tick"})
	}
	fmt.Println(broker.Len(), "clients")
	// Output:
	// 0 clients
}
