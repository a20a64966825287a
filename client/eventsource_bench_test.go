package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkEventSourceReceive measures the client's receive path: the
// response body read through the idle watchdog, the decoder and the
// hand-over to Next, with a server that streams 64-byte events as fast
// as it can.
func BenchmarkEventSourceReceive(b *testing.B) {
	b.Setenv("HTTP_PROXY", "")
	b.Setenv("http_proxy", "")
	data := strings.Repeat("x", 64)
	var batch strings.Builder
	for i := 0; i < 64; i++ {
		batch.WriteString("data: " + data + "\n\n")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for r.Context().Err() == nil {
			if _, err := w.Write([]byte(batch.String())); err != nil {
				return
			}
			f.Flush()
		}
	}))
	defer srv.Close()
	es, err := (&Dialer{}).EventSource(srv.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	ctx := context.Background()
	if _, err := es.Next(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len("data: " + data + "\n\n")))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := es.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	es.Close()
	srv.CloseClientConnections()
}
