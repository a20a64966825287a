package client

import (
	"crypto/tls"
	"io"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"
)

// poison changes, in place, everything that v (a struct reached through
// a pointer) refers to: the entries of maps and slices, and the fields of
// the structs its pointers point to. A constructor that kept any of it
// would see the change. It records the paths it changed.
func poison(v reflect.Value, path string, deep bool, changed *[]string) {
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		p := path + sf.Name
		switch f.Kind() {
		case reflect.Map:
			if f.IsNil() {
				continue
			}
			for _, k := range f.MapKeys() {
				vals := f.MapIndex(k)
				for j := 0; j < vals.Len(); j++ {
					vals.Index(j).SetString("poisoned")
				}
			}
			f.SetMapIndex(reflect.ValueOf("X-Poison"), reflect.ValueOf([]string{"1"}))
			*changed = append(*changed, p)
		case reflect.Slice:
			if f.Len() == 0 {
				continue
			}
			for j := 0; j < f.Len(); j++ {
				switch e := f.Index(j); e.Kind() {
				case reflect.Uint8:
					e.SetUint('P')
				case reflect.String:
					e.SetString("poisoned")
				default:
					e.Set(reflect.Zero(e.Type()))
				}
			}
			*changed = append(*changed, p)
		case reflect.Pointer:
			switch {
			case f.IsNil():
			case deep:
				f.Set(reflect.Zero(f.Type()))
				*changed = append(*changed, p)
			case f.Elem().Kind() == reflect.Struct:
				poison(f.Elem(), p+".", true, changed)
			}
		case reflect.String:
			if deep && f.String() != "" {
				f.SetString("poisoned.invalid")
				*changed = append(*changed, p)
			}
		case reflect.Struct:
			poison(f, p+".", deep, changed)
		}
	}
}

// Changing every reference field of the Dialer and of the options after
// EventSource has returned changes nothing in what its later
// connections do (issue 11, point 3).
func TestEventSourceCopiesOptionsDeeply(t *testing.T) {
	noProxyEnv(t)
	type request struct{ d, o, poison, body string }
	var mu sync.Mutex
	var seenReqs []request
	srv := esServer(t, true, map[string]http.HandlerFunc{"/": func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seenReqs = append(seenReqs, request{r.Header.Get("X-D"), r.Header.Get("X-O"), r.Header.Get("X-Poison"), string(b)})
		mu.Unlock()
		rawHandler(200, "text/event-stream", "data: x\n\n")(w, r)
	}})
	d := &Dialer{
		TLSConfig:          &tls.Config{RootCAs: srv.rootCAs(), ServerName: "127.0.0.1"},
		ProxyTLSConfig:     &tls.Config{ServerName: "proxy.test"},
		Header:             http.Header{"X-D": {"d"}},
		ProxyConnectHeader: http.Header{"X-P": {"p"}},
		Subprotocols:       []string{"a"},
	}
	opts := &EventSourceOptions{
		Method:       http.MethodPost,
		RepeatNonGet: true,
		Body:         []byte("body"),
		Header:       http.Header{"X-O": {"o"}},
		Retry:        time.Millisecond,
		MinDelay:     -1,
	}
	es := newES(t, d, "https://"+srv.Addr+"/", opts)
	var changed []string
	poison(reflect.ValueOf(d).Elem(), "Dialer.", false, &changed)
	poison(reflect.ValueOf(opts).Elem(), "EventSourceOptions.", false, &changed)
	t.Logf("changed %v", changed)
	for _, want := range []string{"Dialer.TLSConfig.RootCAs", "Dialer.TLSConfig.ServerName", "Dialer.ProxyTLSConfig.ServerName",
		"Dialer.Header", "Dialer.ProxyConnectHeader", "Dialer.Subprotocols", "EventSourceOptions.Body", "EventSourceOptions.Header"} {
		found := false
		for _, c := range changed {
			found = found || c == want
		}
		if !found {
			t.Fatalf("poison did not change %s", want)
		}
	}
	for range 3 {
		nextEvent(t, es)
	}
	es.Close()
	mu.Lock()
	defer mu.Unlock()
	for i, r := range seenReqs {
		if r != (request{"d", "o", "", "body"}) {
			t.Fatalf("request %d after the caller changed its options: %+v", i, r)
		}
	}
}

// Changing every reference field of the Dialer and of the options after
// Socket has returned leaves what the Socket keeps as it would be had
// nothing changed: the same as a Socket made from an untouched copy.
func TestSocketCopiesOptionsDeeply(t *testing.T) {
	noProxyEnv(t)
	build := func() (*Dialer, *SocketOptions) {
		return &Dialer{
				TLSConfig:          &tls.Config{ServerName: "origin.test", NextProtos: []string{"http/1.1"}},
				ProxyTLSConfig:     &tls.Config{ServerName: "proxy.test"},
				Header:             http.Header{"X-D": {"d"}},
				ProxyConnectHeader: http.Header{"X-P": {"p"}},
				Subprotocols:       []string{"a"},
			}, &SocketOptions{
				Header:   http.Header{"X-O": {"o"}},
				MinDelay: time.Hour, // one attempt, then a long wait
			}
	}
	d, opts := build()
	s, err := d.Socket("http://127.0.0.1:1/", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d2, opts2 := build()
	want, err := d2.Socket("http://127.0.0.1:1/", opts2)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()

	var changed []string
	poison(reflect.ValueOf(d).Elem(), "Dialer.", false, &changed)
	poison(reflect.ValueOf(opts).Elem(), "SocketOptions.", false, &changed)
	if len(changed) < 7 {
		t.Fatalf("poison changed only %v", changed)
	}
	for _, c := range []struct {
		name      string
		got, want *tls.Config
	}{{"TLSConfig", s.d.TLSConfig, want.d.TLSConfig}, {"ProxyTLSConfig", s.d.ProxyTLSConfig, want.d.ProxyTLSConfig}} {
		if c.got.ServerName != c.want.ServerName || !reflect.DeepEqual(c.got.NextProtos, c.want.NextProtos) {
			t.Errorf("the Socket's %s changed with the caller's: %q %q", c.name, c.got.ServerName, c.got.NextProtos)
		}
	}
	// tls.Config holds state of its own that DeepEqual must not see.
	got, wantD := s.d, want.d
	got.TLSConfig, got.ProxyTLSConfig, wantD.TLSConfig, wantD.ProxyTLSConfig = nil, nil, nil, nil
	if !reflect.DeepEqual(got, wantD) {
		t.Errorf("the Socket's Dialer changed with the caller's:\n got %+v\nwant %+v", got, wantD)
	}
	if !reflect.DeepEqual(s.opts, want.opts) {
		t.Errorf("the Socket's options changed with the caller's:\n got %+v\nwant %+v", s.opts, want.opts)
	}
}
