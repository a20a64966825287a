package realtime

import (
	"encoding/json"
	"strings"
)

// receive handles one message from the client: on v1 and plain sockets
// the text for OnMessage, on v2 a request.
func (s *Socket) receive(text string) {
	s.observeIn(text)
	if s.proto != protoV2 {
		s.onMessage(text)
		return
	}
	head, data, hasData := strings.Cut(text, "\n")
	word, channel, hasChannel := strings.Cut(head, " ")
	switch {
	case word == "message" && !hasChannel:
		s.onMessage(data)
	case word == "publish" && hasChannel:
		s.clientPublish(channel, data)
	case hasData || !hasChannel:
		s.reply(kindError, "", "malformed request "+quotePrefix(head))
	case word == "subscribe":
		s.clientSubscribe(channel)
	case word == "unsubscribe":
		if left, err := s.leave(channel); err != nil || !left {
			s.reply(kindRefused, channel, "not subscribed")
		}
	case word == "presence":
		s.clientPresence(channel)
	default:
		s.reply(kindError, "", "malformed request "+quotePrefix(head))
	}
}

func (s *Socket) onMessage(text string) {
	if s.cfg().onMessage != nil {
		s.cfg().onMessage(s.context(), s, text)
	}
}

// reply queues a frame for this v2 client only.
func (s *Socket) reply(k kind, channel, text string) {
	s.enqueue(&message{kind: k, channel: channel, text: text})
}

// clientSubscribe answers "subscribe CHANNEL": OnSubscribe decides, and
// the socket joins, resuming from the client's cursor.
func (s *Socket) clientSubscribe(channel string) {
	if err := checkChannel(channel); err != nil {
		s.reply(kindRefused, channel, "invalid channel name")
		return
	}
	if s.hub == nil || s.cfg().onSubscribe == nil {
		s.reply(kindRefused, channel, "refused")
		return
	}
	if err := s.cfg().onSubscribe(s.context(), s, channel); err != nil {
		s.reply(kindRefused, channel, err.Error())
		return
	}
	s.mu.Lock()
	mb := s.chans.get(channel)
	s.mu.Unlock()
	if mb != nil {
		// In already: the client is told again how it stands.
		s.reply(kindSubscribed, channel, mb.status)
		return
	}
	if _, err := s.join(s.context(), channel); err != nil {
		s.reply(kindRefused, channel, err.Error())
	}
}

// clientPublish answers "publish CHANNEL\nTEXT": OnPublish decides, and
// the hub publishes. A refusal or a failure comes back as an "error".
func (s *Socket) clientPublish(channel, text string) {
	fail := func(why string) { s.reply(kindError, "", "publish "+quotePrefix(channel)+": "+why) }
	switch {
	case checkChannel(channel) != nil:
		fail("invalid channel name")
	case s.hub == nil || s.cfg().onPublish == nil:
		fail("refused")
	default:
		if err := s.cfg().onPublish(s.context(), s, channel, text); err != nil {
			fail(err.Error())
		} else if _, err := s.hub.Publish(s.context(), channel, text); err != nil {
			fail(err.Error())
		}
	}
}

// clientPresence answers "presence CHANNEL" for a channel the socket is
// in with the channel's presence, a JSON array of PresenceEntry.
func (s *Socket) clientPresence(channel string) {
	s.mu.Lock()
	in := s.chans.get(channel) != nil
	s.mu.Unlock()
	if !in {
		s.reply(kindError, "", "presence "+quotePrefix(channel)+": not subscribed")
		return
	}
	live, err := s.hub.Presence(s.context(), channel)
	if err != nil {
		s.reply(kindError, "", "presence "+quotePrefix(channel)+": "+err.Error())
		return
	}
	if live == nil {
		live = []PresenceEntry{}
	}
	b, _ := json.Marshal(live)
	s.reply(kindPresence, channel, string(b))
}
