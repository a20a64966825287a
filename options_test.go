package realtime

import (
	"net"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/websocket"
)

// Changing Options.WebSocket.OriginPatterns after Handler returned does
// not let a foreign origin in: the handler kept a copy.
func TestHandlerCopiesOriginPatterns(t *testing.T) {
	opts := &Options{WebSocket: websocket.AcceptOptions{OriginPatterns: []string{"good.example"}}}
	ts := newTestServer(t, opts, nil)
	opts.WebSocket.OriginPatterns[0] = "evil.example"

	u, _ := url.Parse(ts.URL)
	u.Scheme = "ws"
	ctx := testCtx(t)
	nc, err := new(net.Dialer).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	c, resp, err := websocket.NewClient(ctx, nc, u, &websocket.ClientOptions{Origin: "http://evil.example"})
	if err == nil {
		c.CloseNow()
		t.Fatal("a foreign origin was upgraded after the caller changed OriginPatterns")
	}
	nc.Close()
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("handshake from a foreign origin: %v, response %v; want 403", err, resp)
	}
}

// fill sets every field reachable from v to a non-zero value: a string,
// a number, slices of two elements, maps of one entry, extensions. It
// leaves funcs nil, which cannot be compared, and the Hub, which is
// shared by design.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type() == reflect.TypeFor[*Hub]() {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i))
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Interface:
		if ext := reflect.ValueOf(deflate.New(nil)); ext.Type().Implements(v.Type()) {
			v.Set(ext)
		}
	case reflect.String:
		v.SetString("a")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	}
}

// mutate changes in place everything reachable from v through
// references (slice elements, map entries, pointees), as a caller
// reusing its options would, and returns the paths of the references it
// went through.
func mutate(v reflect.Value, path string) (refs []string) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || v.Type() == reflect.TypeFor[*Hub]() {
			return nil
		}
		return append(mutate(v.Elem(), "(*"+path+")"), path)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				refs = append(refs, mutate(v.Field(i), path+"."+f.Name)...)
			}
		}
		return refs
	case reflect.Slice:
		for i := range v.Len() {
			refs = append(refs, mutate(v.Index(i), path+"[i]")...)
		}
		return append(refs, path)
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			refs = append(refs, mutate(e, path+"[k]")...)
			v.SetMapIndex(k, e)
		}
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		mutate(k, "")
		fill(e)
		v.SetMapIndex(k, e)
		return append(refs, path)
	case reflect.Interface:
		v.SetZero()
	case reflect.String:
		v.SetString(v.String() + "!")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1)
	}
	return nil
}

// Handler and NewHub copy their options deeply: a caller that changes
// every field reachable from the options it passed, through every slice,
// map and pointer, changes nothing in what was built from them, and
// building leaves the caller's options as they were.
func TestOptionsDeepCopied(t *testing.T) {
	t.Run("Options", func(t *testing.T) {
		mine, ref := new(Options), new(Options)
		fill(reflect.ValueOf(mine).Elem())
		fill(reflect.ValueOf(ref).Elem())
		built := Handler(mine, nil).(*handler)
		want := Handler(ref, nil).(*handler)
		if !reflect.DeepEqual(mine, ref) {
			t.Fatal("Handler changed the caller's options")
		}
		refs := mutate(reflect.ValueOf(mine), "opts")
		if len(refs) < 5 {
			t.Fatalf("the walk went through only %v", refs)
		}
		if reflect.DeepEqual(mine, ref) {
			t.Fatal("mutate changed nothing")
		}
		// Hooks are functions, which DeepEqual finds equal only when nil:
		// the same ones must be set, then they are left out.
		if hooksSet(built.cfg.obs) != hooksSet(want.cfg.obs) {
			t.Fatalf("changing the options after Handler changed its hooks")
		}
		built.cfg.obs, want.cfg.obs = observer{}, observer{}
		if !reflect.DeepEqual(built.cfg, want.cfg) {
			t.Fatalf("changing the options after Handler changed its configuration\n got  %+v\n want %+v\n(through %v)", built.cfg, want.cfg, refs)
		}
	})
	t.Run("HubOptions", func(t *testing.T) {
		mine, ref := new(HubOptions), new(HubOptions)
		fill(reflect.ValueOf(mine).Elem())
		fill(reflect.ValueOf(ref).Elem())
		built, want := newHub(t, mine), newHub(t, ref)
		mutate(reflect.ValueOf(mine), "opts")
		type settings struct {
			node            string
			maxN            int
			maxBytes        int64
			maxAge, ttl     time.Duration
			own, onPresence bool
		}
		of := func(h *Hub) settings {
			return settings{h.node, h.maxN, h.maxBytes, h.maxAge, h.ttl, h.own, h.onPresence != nil}
		}
		if of(built) != of(want) {
			t.Fatalf("changing the options after NewHub changed the Hub: %+v, want %+v", of(built), of(want))
		}
	})
}

// hooksSet tells which hooks of o are set.
func hooksSet(o observer) string {
	v := reflect.ValueOf(o)
	set := make([]byte, v.NumField())
	for i := range set {
		set[i] = '0'
		if !v.Field(i).IsNil() {
			set[i] = '1'
		}
	}
	return string(set)
}
