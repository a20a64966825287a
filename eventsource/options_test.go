package eventsource

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// mutateRefs changes, in place, everything v's reference fields reach,
// and replaces those fields, as a caller might after passing v to a
// constructor. It returns the paths of the fields it changed. A
// replaced func fails the test if it is ever called.
func mutateRefs(t *testing.T, v reflect.Value, path string) []string {
	var paths []string
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			paths = append(paths, mutateRefs(t, v.Field(i), path+"."+f.Name)...)
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for _, k := range v.MapKeys() {
			v.SetMapIndex(k, mutatedValue(v.Type().Elem()))
		}
		v.SetMapIndex(reflect.ValueOf("X-Mutated").Convert(v.Type().Key()), mutatedValue(v.Type().Elem()))
		paths = append(paths, path)
	case reflect.Slice:
		for i := range v.Len() {
			v.Index(i).Set(mutatedValue(v.Type().Elem()))
		}
		paths = append(paths, path)
	case reflect.Func:
		name := path
		v.Set(reflect.MakeFunc(v.Type(), func([]reflect.Value) []reflect.Value {
			t.Errorf("%s: the caller's replacement was called", name)
			out := make([]reflect.Value, v.Type().NumOut())
			for i := range out {
				out[i] = reflect.Zero(v.Type().Out(i))
			}
			return out
		}))
		paths = append(paths, path)
	case reflect.Pointer:
		// A pointer to a shared object (a History) is kept as such; the
		// field itself is replaced.
		v.Set(reflect.New(v.Type().Elem()))
		paths = append(paths, path)
	}
	return paths
}

func mutatedValue(t reflect.Type) reflect.Value {
	switch t.Kind() {
	case reflect.String:
		return reflect.ValueOf("mutated").Convert(t)
	case reflect.Slice:
		v := reflect.MakeSlice(t, 1, 1)
		v.Index(0).Set(mutatedValue(t.Elem()))
		return v
	}
	return reflect.Zero(t)
}

// Every constructor copies its options deeply: changing every reference
// field of the caller's options after the call changes nothing.
func TestOptionsCopiedDeeply(t *testing.T) {
	t.Run("NewBroker", func(t *testing.T) {
		hist := NewHistory(nil)
		failed := 0
		opts := &BrokerOptions{
			Stream:  Options{Header: http.Header{"X-Test": {"a"}}},
			History: hist,
			OnResumeFailed: func(ctx context.Context, s *Stream) error {
				failed++
				return nil
			},
		}
		b := NewBroker(opts)
		paths := mutateRefs(t, reflect.ValueOf(opts).Elem(), "BrokerOptions")
		want := []string{"BrokerOptions.Stream.Header", "BrokerOptions.History", "BrokerOptions.OnResumeFailed"}
		if !slices.Equal(paths, want) {
			t.Fatalf("reference fields %v, want %v: check the new ones are copied", paths, want)
		}
		srv := startBroker(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp := open(t, ctx, srv, "HTTP/1.1", "/", http.Header{"Last-Event-Id": {"unknown"}})
		defer resp.Body.Close()
		if got := resp.Header.Values("X-Test"); !slices.Equal(got, []string{"a"}) || resp.Header.Get("X-Mutated") != "" {
			t.Errorf("response header %v after the options changed", resp.Header)
		}
		waitLen(t, b, 1)
		if _, err := b.Publish(Event{ID: "1", Data: "x"}); err != nil {
			t.Fatal(err)
		}
		next(t, readEvents(resp.Body, nil))
		if hist.Len() != 1 {
			t.Error("the broker no longer adds to the History it was given")
		}
		if failed != 1 {
			t.Errorf("OnResumeFailed called %d times, want 1", failed)
		}
	})
	t.Run("NewDecoder", func(t *testing.T) {
		var comments []string
		opts := &DecoderOptions{LastEventID: "7", OnComment: func(c string) { comments = append(comments, c) }}
		d := NewDecoder(strings.NewReader(":hi\ndata: x\n\n"), opts)
		paths := mutateRefs(t, reflect.ValueOf(opts).Elem(), "DecoderOptions")
		if want := []string{"DecoderOptions.OnComment"}; !slices.Equal(paths, want) {
			t.Fatalf("reference fields %v, want %v: check the new ones are copied", paths, want)
		}
		opts.LastEventID = "mutated"
		ev, err := d.Next()
		if err != nil || ev.ID != "7" || !slices.Equal(comments, []string{"hi"}) {
			t.Errorf("got %+v, %v, comments %q", ev, err, comments)
		}
	})
	t.Run("Accept", func(t *testing.T) {
		// Accept applies Header to the response head at once and keeps
		// no reference field.
		opts := &Options{Header: http.Header{"X-Test": {"a"}}}
		if paths := mutateRefs(t, reflect.ValueOf(&Options{}).Elem(), "Options"); !slices.Equal(paths, []string{"Options.Header"}) {
			t.Fatalf("reference fields %v: check the new ones are copied", paths)
		}
		c := opts.withDefaults()
		if c.Header != nil {
			t.Error("the stream keeps the caller's Header")
		}
	})
	t.Run("NewHistory", func(t *testing.T) {
		if paths := mutateRefs(t, reflect.ValueOf(&HistoryOptions{}).Elem(), "HistoryOptions"); len(paths) != 0 {
			t.Fatalf("reference fields %v: check NewHistory copies them", paths)
		}
	})
}
