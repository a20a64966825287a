package eventsource

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// failWriter is a ResponseWriter whose writes fail with err once armed;
// a write fails after cancel, if set, has been called.
type failWriter struct {
	http.ResponseWriter
	err    error
	cancel func()
}

func (f *failWriter) Write(p []byte) (int, error) {
	if f.cancel != nil {
		f.cancel()
	}
	if f.err != nil {
		return 0, f.err
	}
	return f.ResponseWriter.Write(p)
}

func (f *failWriter) FlushError() error { return nil }

// sendError returns the error of a Send to a stream over a writer that
// fails with err, and the stream's error afterwards.
func sendError(t *testing.T, err error, withCancel bool) (sendErr, streamErr error) {
	t.Helper()
	w := &failWriter{ResponseWriter: httptest.NewRecorder()}
	s := acceptOn(t, w)
	ctx := context.Background()
	if withCancel {
		c, cancel := context.WithCancel(ctx)
		defer cancel()
		ctx, w.cancel = c, cancel
	}
	w.err = err
	sendErr = s.SendData(ctx, "x")
	return sendErr, s.Send(context.Background(), Event{Data: "y"})
}

// Every error message starts with "eventsource: " once, quotes at most a
// short prefix of any input, and keeps what it wraps testable.
func TestErrorMessages(t *testing.T) {
	long := strings.Repeat("M", 1<<20)
	accept := func(method, accept string, w http.ResponseWriter) error {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Method = method
		r.Header.Set("Accept", accept)
		_, err := Accept(w, r, nil)
		return err
	}
	timeoutSend, timeoutClosed := sendError(t, os.ErrDeadlineExceeded, false)
	failSend, failClosed := sendError(t, errors.New("broken pipe"), false)
	cutSend, cutClosed := sendError(t, errors.New("i/o timeout"), true)
	_, tooLarge := NewDecoder(strings.NewReader("data: "+long), &DecoderOptions{MaxEventSize: 10}).Next()
	_, field := Encode(Event{ID: "a\n" + long})
	b := NewBroker(nil)
	b.Close()
	_, brokerClosed := b.Publish(Event{})

	for _, tc := range []struct {
		name string
		err  error
		is   []error
	}{
		{"method", accept(long, "text/event-stream", httptest.NewRecorder()), []error{ErrNotEventSource}},
		{"not acceptable", accept(http.MethodGet, "text/html", httptest.NewRecorder()), []error{ErrNotEventSource}},
		{"no flush", accept(http.MethodGet, "text/event-stream", noFlush{httptest.NewRecorder()}), []error{ErrFlushUnsupported}},
		{"write timeout", timeoutSend, []error{ErrWriteTimeout, os.ErrDeadlineExceeded}},
		{"after write timeout", timeoutClosed, []error{net.ErrClosed, ErrWriteTimeout}},
		{"write failed", failSend, nil},
		{"after write failed", failClosed, []error{net.ErrClosed}},
		{"write cut by its context", cutSend, []error{context.Canceled}},
		{"after write cut", cutClosed, []error{net.ErrClosed, context.Canceled}},
		{"event too large", tooLarge, []error{ErrEventTooLarge}},
		{"invalid field", field, []error{ErrInvalidField}},
		{"broker closed", brokerClosed, []error{ErrBrokerClosed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("no error")
			}
			msg := tc.err.Error()
			if !strings.HasPrefix(msg, "eventsource: ") || strings.Count(msg, "eventsource:") != 1 {
				t.Errorf("message %q: want the prefix \"eventsource: \" once", msg)
			}
			if len(msg) > 200 {
				t.Errorf("message of %d bytes: %.80q...", len(msg), msg)
			}
			for _, target := range tc.is {
				if !errors.Is(tc.err, target) {
					t.Errorf("%q does not match %v", msg, target)
				}
			}
		})
	}
}
