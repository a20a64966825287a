package websocket

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
)

// referenceFields lists the fields of struct type typ, embedded structs
// included, through which a shallow copy would share memory with the
// original. Functions are shared on purpose and left out.
func referenceFields(typ reflect.Type) []string {
	var names []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch f.Type.Kind() {
		case reflect.Struct:
			if f.Anonymous {
				names = append(names, referenceFields(f.Type)...)
			}
		case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Array:
			names = append(names, f.Name)
		}
	}
	return names
}

// fill sets every reference field of the struct v to a value holding
// data, so that a shallow copy would share it.
func fill(t *testing.T, v reflect.Value) {
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		switch {
		case sf.Type.Kind() == reflect.Struct && sf.Anonymous:
			fill(t, f)
		case sf.Type == reflect.TypeFor[[]string]():
			f.Set(reflect.ValueOf([]string{"a", "b"}))
		case sf.Type == reflect.TypeFor[http.Header]():
			f.Set(reflect.ValueOf(http.Header{"A": {"1"}}))
		case sf.Type == reflect.TypeFor[[]extensions.Extension]():
			f.Set(reflect.ValueOf([]extensions.Extension{deflate.New(nil)}))
		case slices.Contains([]reflect.Kind{reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Array}, sf.Type.Kind()):
			t.Fatalf("field %s of type %v: teach fill and mutate about it, and copy it in Clone", sf.Name, sf.Type)
		}
	}
}

// mutate changes, in place, the data behind every reference field of the
// struct v that fill set.
func mutate(v reflect.Value) {
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		switch {
		case sf.Type.Kind() == reflect.Struct && sf.Anonymous:
			mutate(f)
		case sf.Type == reflect.TypeFor[[]string]():
			f.Index(0).SetString("changed")
		case sf.Type == reflect.TypeFor[http.Header]():
			h := f.Interface().(http.Header)
			h["A"][0] = "changed"
			h.Set("B", "added")
		case sf.Type == reflect.TypeFor[[]extensions.Extension]():
			f.Index(0).Set(reflect.Zero(sf.Type.Elem()))
		}
	}
}

// TestOptionsClone: Clone copies every reference field of AcceptOptions
// and ClientOptions (found by reflection, so a field added later without
// a copy fails here), and changes to the clone do not show in the
// original.
func TestOptionsClone(t *testing.T) {
	if fields := referenceFields(reflect.TypeFor[ConnOptions]()); len(fields) != 0 {
		t.Fatalf("ConnOptions has reference fields %v: copy them where ConnOptions is kept", fields)
	}
	check := func(name string, orig, snapshot any, clone func() any) {
		fill(t, reflect.ValueOf(orig).Elem())
		fill(t, reflect.ValueOf(snapshot).Elem())
		c := clone()
		if !reflect.DeepEqual(c, orig) {
			t.Fatalf("%s.Clone() = %+v, want %+v", name, c, orig)
		}
		mutate(reflect.ValueOf(c).Elem())
		if !reflect.DeepEqual(orig, snapshot) {
			t.Fatalf("changing %s.Clone() changed the original: %+v", name, orig)
		}
	}
	ao := &AcceptOptions{}
	check("AcceptOptions", ao, &AcceptOptions{}, func() any { return ao.Clone() })
	co := &ClientOptions{}
	check("ClientOptions", co, &ClientOptions{}, func() any { return co.Clone() })
	if !reflect.DeepEqual((*AcceptOptions)(nil).Clone(), &AcceptOptions{}) || !reflect.DeepEqual((*ClientOptions)(nil).Clone(), &ClientOptions{}) {
		t.Fatal("Clone of nil is not the zero value")
	}
}

// TestServeOptionsCopied: a server's options changed after Serve started,
// every reference field of AcceptOptions, change nothing: a foreign
// origin is still refused, and the subprotocol, header and extension
// answered stay the same.
func TestServeOptionsCopied(t *testing.T) {
	opts := &AcceptOptions{
		OriginPatterns: []string{"good.example"},
		Subprotocols:   []string{"chat"},
		Header:         http.Header{"X-Server": {"one"}},
		Extensions:     []extensions.Extension{deflate.New(nil)},
	}
	mutations := map[string]func(){
		"OriginPatterns": func() {
			opts.OriginPatterns[0] = "*"
			opts.OriginPatterns = append(opts.OriginPatterns, "*")
		},
		"Subprotocols": func() {
			opts.Subprotocols[0] = "other"
			opts.Subprotocols = []string{"other"}
		},
		"Header": func() {
			opts.Header.Set("X-Server", "two")
			opts.Header.Set("X-Extra", "added")
		},
		"Extensions": func() {
			opts.Extensions[0] = nil
			opts.Extensions = nil
		},
	}
	fields := referenceFields(reflect.TypeFor[AcceptOptions]())
	for _, f := range fields {
		if mutations[f] == nil {
			t.Fatalf("AcceptOptions.%s is not changed by this test", f)
		}
	}
	if len(mutations) != len(fields) {
		t.Fatalf("mutations for %d fields, AcceptOptions has %d: %v", len(mutations), len(fields), fields)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- Serve(ln, opts, echoHandler) }()
	defer func() {
		ln.Close()
		<-served
	}()
	addr := ln.Addr().String()
	// One handshake first, so that a server copying lazily has done so.
	c, _, err := dialServer(t, addr, &ClientOptions{Origin: "http://good.example"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close(StatusNormalClosure, "")
	for _, m := range mutations {
		m()
	}

	_, resp, err := dialServer(t, addr, &ClientOptions{Origin: "http://evil.example"})
	if !errors.Is(err, ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v, %v; want 403", resp, err)
	}
	c, resp, err = dialServer(t, addr, &ClientOptions{
		Origin:       "http://good.example",
		Subprotocols: []string{"other", "chat"},
		Extensions:   []extensions.Extension{deflate.New(nil)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "chat" {
		t.Errorf("subprotocol %q, want chat", c.Subprotocol())
	}
	if h := resp.Header; h.Get("X-Server") != "one" || h.Get("X-Extra") != "" {
		t.Errorf("response header %v, want X-Server: one only", h)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Errorf("Sec-WebSocket-Extensions %q, want permessage-deflate", ext)
	}
	expectEcho(t, c, "still the same server")
	c.Close(StatusNormalClosure, "")
}

// TestConnOptionsNotKept: Accept, AcceptConn and NewClient keep nothing
// of their options: changes made once they return do not reach the
// connection.
func TestConnOptionsNotKept(t *testing.T) {
	a, b := net.Pipe()
	sopts := &AcceptOptions{Subprotocols: []string{"chat"}, Header: http.Header{"X-A": {"1"}}}
	copts := &ClientOptions{Subprotocols: []string{"chat"}, Header: http.Header{"X-B": {"1"}}}
	type result struct {
		c   *Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, _, err := AcceptConn(context.Background(), a, sopts)
		accepted <- result{c, err}
	}()
	client, _, err := NewClient(context.Background(), b, &url.URL{Scheme: "ws", Host: "x", Path: "/"}, copts)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	server := r.c
	defer server.CloseNow()
	sopts.Subprotocols[0], copts.Subprotocols[0] = "changed", "changed"
	sopts.Header.Set("X-A", "2")
	copts.Header.Set("X-B", "2")
	sopts.MaxMessageSize, copts.MaxMessageSize = 1, 1
	if server.Subprotocol() != "chat" || client.Subprotocol() != "chat" {
		t.Fatalf("subprotocols %q %q", server.Subprotocol(), client.Subprotocol())
	}
	done := startEcho(t, server)
	expectEcho(t, client, "longer than one byte")
	client.Close(StatusNormalClosure, "")
	<-done
}

// optionsKey must hold every field of ConnOptions but the functions:
// connections whose options differ in a field it misses would share
// one's options (see sharedOptions).
func TestOptionsKey(t *testing.T) {
	opts, key := reflect.TypeFor[ConnOptions](), reflect.TypeFor[optionsKey]()
	var want []string
	for i := range opts.NumField() {
		if f := opts.Field(i); f.Type.Kind() != reflect.Func {
			want = append(want, strings.ToLower(f.Name[:1])+f.Name[1:]+" "+f.Type.String())
		}
	}
	var got []string
	for i := range key.NumField() {
		f := key.Field(i)
		got = append(got, f.Name+" "+f.Type.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("optionsKey has %v, want the comparable fields of ConnOptions, %v", got, want)
	}
	// Equal options share, different ones do not.
	a, b := sharedOptions(ConnOptions{Heartbeat: time.Second}.withDefaults()), sharedOptions(ConnOptions{Heartbeat: time.Second}.withDefaults())
	c := sharedOptions(ConnOptions{Heartbeat: 2 * time.Second}.withDefaults())
	if a != b || a == c || c.Heartbeat != 2*time.Second {
		t.Fatalf("shared %p %p %p (%v)", a, b, c, c.Heartbeat)
	}
	f := func([]byte) {}
	if d := sharedOptions(ConnOptions{Heartbeat: time.Second, OnPing: f}.withDefaults()); d == a || d.OnPing == nil {
		t.Fatal("options with OnPing shared with others")
	}
}
