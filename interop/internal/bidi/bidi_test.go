package bidi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const page = `<!doctype html><meta charset="utf-8"><title>bidi</title>
<input id="in"><button id="go" onclick="window.clicked = (window.clicked || 0) + 1">go</button>
<script>window.ready = 'yes';</script>`

// Firefox starts, opens a tab on a page, evaluates expressions (promises
// awaited), reports a throwing script as a ScriptError and a bad command
// as an Error, types into an input and clicks a button with real input
// events, and stops without leaving a process behind.
func TestFirefox(t *testing.T) {
	exe, err := exec.LookPath("firefox-esr")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("firefox-esr is missing (CI=true): run interop/peers.sh")
		}
		t.Skip("firefox-esr is not installed")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	b, err := Start(ctx, &Options{Exec: exe, ProfileDir: dir, Output: t.Output()})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()
	prefs, err := os.ReadFile(filepath.Join(dir, "user.js"))
	if err != nil || !strings.Contains(string(prefs), `user_pref("app.update.auto", false);`) {
		t.Fatalf("user.js: %v\n%s", err, prefs)
	}

	tab, err := b.NewTab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Navigate(ctx, tab, srv.URL); err != nil {
		t.Fatal(err)
	}
	v, err := b.Evaluate(ctx, tab, `window.ready + typeof WebSocket + typeof EventSource`)
	if err != nil || v.Type != "string" || string(v.Value) != `"yesfunctionfunction"` {
		t.Fatalf("evaluate: %+v, %v", v, err)
	}
	v, err = b.Evaluate(ctx, tab, `new Promise((resolve) => setTimeout(() => resolve(6 * 7), 10))`)
	if err != nil || v.Type != "number" || string(v.Value) != "42" {
		t.Fatalf("evaluate a promise: %+v, %v", v, err)
	}

	_, err = b.Evaluate(ctx, tab, `(() => { throw new TypeError('no good'); })()`)
	var se *ScriptError
	if !errors.As(err, &se) || !strings.Contains(se.Text, "no good") {
		t.Fatalf("a throwing script: %v", err)
	}
	err = b.Navigate(ctx, "no-such-context", srv.URL)
	var be *Error
	if !errors.As(err, &be) || be.Code != "no such frame" {
		t.Fatalf("a command on no tab: %v", err)
	}

	if err := b.Type(ctx, tab, "#in", "hé ✓"); err != nil {
		t.Fatal(err)
	}
	if err := b.Click(ctx, tab, "#go"); err != nil {
		t.Fatal(err)
	}
	v, err = b.Evaluate(ctx, tab, `document.getElementById('in').value + '|' + window.clicked`)
	if err != nil || string(v.Value) != `"hé ✓|1"` {
		t.Fatalf("after typing and clicking: %+v, %v", v, err)
	}
	if err := b.Click(ctx, tab, "#nothing"); err == nil {
		t.Fatal("clicking no element succeeded")
	}

	// A self-signed certificate: refused in a user context that does not
	// accept insecure certificates, accepted in one that does.
	tlsSrv := httptest.NewTLSServer(srv.Config.Handler)
	defer tlsSrv.Close()
	for _, accept := range []bool{false, true} {
		uc, err := b.NewUserContext(ctx, accept)
		if err != nil {
			t.Fatal(err)
		}
		utab, err := b.NewTabIn(ctx, uc)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Navigate(ctx, utab, tlsSrv.URL)
		if accept && err != nil || !accept && err == nil {
			t.Errorf("user context with acceptInsecureCerts %v: navigate to a self-signed server: %v", accept, err)
		}
		if err := b.RemoveUserContext(ctx, uc); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Evaluate(ctx, utab, `1`); !errors.As(err, &be) {
			t.Fatalf("evaluate in a tab of a removed user context: %v", err)
		}
	}

	if err := b.CloseTab(ctx, tab); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Evaluate(ctx, tab, `1`); !errors.As(err, &be) {
		t.Fatalf("evaluate in a closed tab: %v", err)
	}
}

// A Browser whose connection ended answers every command with ErrClosed.
func TestClosed(t *testing.T) {
	b := &Browser{pending: map[int]chan reply{}, err: errors.New("gone")}
	if err := b.Call(context.Background(), "session.status", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}
