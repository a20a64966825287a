package websocket

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func echoServer(t *testing.T, opts *AcceptOptions) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func dialTest(t *testing.T, srv *httptest.Server, opts *ClientOptions) *Conn {
	u, _ := url.Parse(strings.Replace(srv.URL, "http", "ws", 1))
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := NewClient(context.Background(), nc, u, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSmokeEcho(t *testing.T) {
	srv := echoServer(t, nil)
	c := dialTest(t, srv, nil)
	ctx := context.Background()
	for _, size := range []int{0, 1, 125, 126, 127, 4000, 65535, 65536, 1 << 20} {
		msg := bytes.Repeat([]byte("é"), size/2)
		if err := c.Write(ctx, MessageText, msg); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != MessageText || !bytes.Equal(got, msg) {
			t.Fatalf("size %d: typ %v err %v equal %v", size, typ, err, bytes.Equal(got, msg))
		}
	}
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	if _, err := c.Ping(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
}
