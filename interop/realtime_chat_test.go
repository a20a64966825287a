package interop

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The chat demo (examples/chat, run as its own process) in two headless
// Chromium pages: each participant says something, both see both lines,
// and the participant list shows the transport each one uses. Directly
// they use WebSocket; behind nginx without Upgrade forwarding and behind
// squid refusing CONNECT, the WebSocket fails and both fall back to
// EventSource with POSTs, and the chat still works both ways.

const rtChatWait = 45 * time.Second

// rtChat runs the two-participant chat on base (the page's origin as the
// browser reaches it) and checks the transport both end up on.
func rtChat(t *testing.T, browser context.Context, base, want string) {
	t.Helper()
	rtChatOn(t, browser, [2]string{base, base}, want)
}

// rtChatOn is rtChat with alice's page on bases[0] and bob's on
// bases[1].
func rtChatOn(t *testing.T, browser context.Context, bases [2]string, want string) {
	t.Helper()
	const state = `JSON.stringify({status: document.getElementById('status').textContent,
		who: [...document.querySelectorAll('#who li')].map((li) => li.dataset.name + '/' + li.dataset.transport),
		log: [...document.querySelectorAll('#log li')].map((li) => li.textContent)})`
	names := []string{"alice", "bob"}
	tabs := make([]context.Context, len(names))
	for i, name := range names {
		tabs[i] = rtTab(t, browser, bases[i]+"/?name="+name)
		rtWait(t, tabs[i], name+" connects over "+want,
			fmt.Sprintf(`document.getElementById('status').dataset.transport === %q`, want), state, rtChatWait)
	}
	// Both see both, with the transport each uses.
	whoOK := fmt.Sprintf(`[...document.querySelectorAll('#who li')].map((li) => li.dataset.name + '/' + li.dataset.transport).join(',') === 'alice/%s,bob/%s'`, want, want)
	for i, name := range names {
		rtWait(t, tabs[i], name+" sees both participants", whoOK, state, rtChatWait)
	}
	// Each says something by typing and clicking, as a person would.
	for i, name := range names {
		rtChatType(t, tabs[i], name, "hello from "+name+" ✓")
	}
	for i, name := range names {
		for _, from := range names {
			line := rtChatLineJS(from, want, "hello from "+from+" ✓")
			rtWait(t, tabs[i], name+" sees "+from+"'s line", line, state, rtChatWait)
		}
		// Exactly two lines: nothing twice.
		if n := rtEval[int](t, tabs[i], `document.querySelectorAll('#log li.say').length`); n != 2 {
			t.Fatalf("%s shows %d lines, want 2: %s", name, n, rtEval[string](t, tabs[i], state))
		}
	}
	t.Logf("alice's page: %s", rtEval[string](t, tabs[0], state))
}

func TestRealtimeChatWebSocket(t *testing.T) {
	chat := rtStartChat(t)
	browser := rtStartChromium(t)
	rtChat(t, browser, "http://"+chat, "websocket")
}

// Two chat processes share the rooms through Redis, and through NATS
// JetStream: alice's page is on one, bob's on the other; each lists both
// in the lobby, and each line reaches both, once.
func TestRealtimeChatTwoProcesses(t *testing.T) {
	for _, broker := range []string{"redis", "nats"} {
		t.Run(broker, func(t *testing.T) {
			var flags []string
			if broker == "redis" {
				flags = []string{"-redis", mnStartRedis(t).URL()}
			} else {
				flags = []string{"-nats", mnStartNATS(t).URL()}
			}
			a, b := rtStartChat(t, flags...), rtStartChat(t, flags...)
			browser := rtStartChromium(t)
			rtChatOn(t, browser, [2]string{"http://" + a, "http://" + b}, "websocket")
		})
	}
}

func TestRealtimeChatNginx(t *testing.T) {
	chat := rtStartChat(t)
	proxy := rtStartNginx(t, chat)
	browser := rtStartChromium(t)
	rtChat(t, browser, "http://"+proxy, "eventsource")
}

func TestRealtimeChatSquid(t *testing.T) {
	chat := rtStartChat(t)
	proxy, accessLog := rtStartSquid(t)
	browser := rtStartChromium(t,
		chromedp.ProxyServer("http://"+proxy),
		// Without <-loopback> Chromium bypasses proxies for 127.0.0.1.
		chromedp.Flag("proxy-bypass-list", "<-loopback>"))
	rtChat(t, browser, "http://"+chat, "eventsource")
	// The WebSockets were tried, as CONNECTs that squid refused, and the
	// page, stream and POSTs went through squid.
	b, err := os.ReadFile(accessLog)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for _, want := range []string{"TCP_DENIED/403", "CONNECT " + chat, "POST http://" + chat + "/chat"} {
		if !strings.Contains(log, want) {
			t.Fatalf("squid's access log lacks %q:\n%s", want, log)
		}
	}
}
