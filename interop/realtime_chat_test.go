package interop

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The chat demo (examples/chat, run as its own process) in two pages of
// headless Chromium, and of Firefox: each participant says something, both see both lines,
// and the participant list shows the transport each one uses. Directly
// they use WebSocket; behind nginx without Upgrade forwarding and behind
// squid refusing CONNECT, the WebSocket fails and both fall back to
// EventSource with POSTs, and the chat still works both ways.

const rtChatWait = 45 * time.Second

// rtChat runs the two-participant chat on base (the page's origin as the
// browser reaches it) and checks the transport both end up on.
func rtChat(t *testing.T, browser rtBrowser, base, want string) {
	t.Helper()
	rtChatOn(t, browser, [2]string{base, base}, want)
}

// rtChatState describes a chat page for a failure message.
const rtChatState = `JSON.stringify({status: document.getElementById('status').textContent,
	room: document.getElementById('room').textContent,
	rooms: [...document.querySelectorAll('#rooms li')].map((li) => li.textContent),
	who: [...document.querySelectorAll('#who li')].map((li) => li.dataset.name + '/' + li.dataset.transport),
	log: [...document.querySelectorAll('#log li')].map((li) => li.textContent)})`

// rtChatOn is rtChat with alice's page on bases[0] and bob's on
// bases[1]. It returns their tabs.
func rtChatOn(t *testing.T, browser rtBrowser, bases [2]string, want string) []rtTab {
	t.Helper()
	const state = rtChatState
	names := []string{"alice", "bob"}
	tabs := make([]rtTab, len(names))
	for i, name := range names {
		tabs[i] = rtOpen(t, browser, bases[i]+"/?name="+name)
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
	return tabs
}

// rtWhoJS is a JavaScript condition: the page lists exactly who (items
// "name/transport", sorted by name) in its current room.
func rtWhoJS(who ...string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#who li')].map((li) => li.dataset.name + '/' + li.dataset.transport).join(',') === %q`, strings.Join(who, ","))
}

func TestRealtimeChatWebSocket(t *testing.T) {
	rtEachBrowser(t, func(t *testing.T, browser rtBrowser) {
		chat := rtStartChat(t)
		rtChat(t, browser, "http://"+chat, "websocket")
	})
}

// Two chat processes share the rooms through Redis, and through NATS
// JetStream: alice's page is on one, bob's on the other; each lists both
// in the lobby, and each line reaches both, once.
func TestRealtimeChatTwoProcesses(t *testing.T) {
	for _, broker := range []string{"redis", "nats"} {
		t.Run(broker, func(t *testing.T) {
			// A broker and processes per browser: the chat keeps history.
			rtEachBrowser(t, func(t *testing.T, browser rtBrowser) {
				var flags []string
				if broker == "redis" {
					flags = []string{"-redis", mnStartRedis(t).URL()}
				} else {
					flags = []string{"-nats", mnStartNATS(t).URL()}
				}
				a, b := rtStartChat(t, flags...), rtStartChat(t, flags...)
				tabs := rtChatOn(t, browser, [2]string{"http://" + a, "http://" + b}, "websocket")
				rtChatRooms(t, browser, tabs, "http://"+b)
			})
		})
	}
}

// rtChatRooms: after the lobby chat of rtChatOn, alice enters the room
// go with the join box, bob from the room list, and carol by URL on
// base; each lists the three in go, and alice's line there reaches the
// two others, once. Back in the lobby, alice's page still has its
// lines.
func rtChatRooms(t *testing.T, browser rtBrowser, tabs []rtTab, base string) {
	t.Helper()
	alice, bob := tabs[0], tabs[1]
	if err := alice.typeText(rtChatWait, "#join-room", "go"); err != nil {
		t.Fatalf("alice joining go: %v", err)
	}
	rtClick(t, alice, "alice joining go", "#join")
	rtWait(t, bob, "the room list offers go", `document.querySelector('#rooms li[data-room="go"] a') !== null`, rtChatState, rtChatWait)
	rtClick(t, bob, "bob choosing go", `#rooms li[data-room="go"] a`)
	carol := rtOpen(t, browser, base+"/?name=carol&room=go")
	pages := map[string]rtTab{"alice": alice, "bob": bob, "carol": carol}
	for name, tab := range pages {
		rtWait(t, tab, name+" is in go", `document.getElementById('room').textContent === 'go'`, rtChatState, rtChatWait)
		rtWait(t, tab, name+" lists the three in go", rtWhoJS("alice/websocket", "bob/websocket", "carol/websocket"), rtChatState, rtChatWait)
	}
	rtChatType(t, alice, "alice", "in go ✓")
	for name, tab := range pages {
		rtWait(t, tab, name+" sees alice's line in go", rtChatLineJS("alice", "websocket", "in go ✓"), rtChatState, rtChatWait)
		if n := rtEval[int](t, tab, `document.querySelectorAll('#log li.say').length`); n != 1 {
			t.Fatalf("%s shows %d lines in go, want 1: %s", name, n, rtEval[string](t, tab, rtChatState))
		}
	}
	rtClick(t, alice, "alice back to the lobby", `#rooms li[data-room="lobby"] a`)
	rtWait(t, alice, "alice's lobby has its two lines and its two people",
		`document.querySelectorAll('#log li.say').length === 2 && `+rtWhoJS("alice/websocket", "bob/websocket"), rtChatState, rtChatWait)
}

func TestRealtimeChatNginx(t *testing.T) {
	rtEachBrowser(t, func(t *testing.T, browser rtBrowser) {
		chat := rtStartChat(t)
		proxy := rtStartNginx(t, chat)
		rtChat(t, browser, "http://"+proxy, "eventsource")
	})
}

func TestRealtimeChatSquid(t *testing.T) {
	for _, name := range rtBrowserNames {
		t.Run(name, func(t *testing.T) { testRealtimeChatSquid(t, name) })
	}
}

func testRealtimeChatSquid(t *testing.T, name string) {
	chat := rtStartChat(t)
	proxy, accessLog := rtStartSquid(t)
	browser := rtStartBrowser(t, name, proxy)
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
