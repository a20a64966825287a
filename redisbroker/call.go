package redisbroker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/redis/go-redis/v9"
)

// A request is published to the node's call channel as
// "REPLYCHANNEL\nID\nREQ", its answer to the caller's reply channel as
// "ID\nANSWER".

// Call implements realtime.Broker over Redis pub/sub. It waits for the
// answer until ctx ends or CallTimeout passes; a request or an answer
// lost on a broken connection fails the call with an error wrapping
// realtime.ErrBrokerUnavailable.
func (b *Broker) Call(ctx context.Context, node string, req []byte) ([]byte, error) {
	if b.closed.Load() {
		return nil, errClosed("call")
	}
	if b.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.callTimeout)
		defer cancel()
	}
	if err := b.listen(ctx); err != nil {
		return nil, b.fail(ctx, "call", node, err)
	}
	id := strconv.FormatUint(b.callSeq.Add(1), 36)
	answer := make(chan []byte, 1)
	b.pmu.Lock()
	b.pending[id] = answer
	b.pmu.Unlock()
	defer func() {
		b.pmu.Lock()
		delete(b.pending, id)
		b.pmu.Unlock()
	}()
	msg := make([]byte, 0, len(b.replyChannel())+len(id)+2+len(req))
	msg = append(append(append(append(append(msg, b.replyChannel()...), '\n'), id...), '\n'), req...)
	octx, cancel := b.opContext(ctx)
	n, err := b.client.Publish(octx, b.callChannel(node), msg).Result()
	cancel()
	if err != nil {
		return nil, b.fail(octx, "call", node, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("redisbroker: call %q: %w", node, realtime.ErrNoNode)
	}
	select {
	case a := <-answer:
		return a, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("redisbroker: call %q: no answer: %w: %w", node, realtime.ErrBrokerUnavailable, ctx.Err())
	case <-b.closing:
		return nil, errClosed("call")
	}
}

// listen subscribes the Broker to its reply channel, once.
func (b *Broker) listen(ctx context.Context) error {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	if b.replies != nil {
		return nil
	}
	if b.closed.Load() {
		return realtime.ErrBrokerClosed
	}
	ps := b.client.Subscribe(ctx, b.replyChannel())
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return err
	}
	b.replies = ps
	ch := ps.Channel()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for m := range ch {
			id, a, ok := strings.Cut(m.Payload, "\n")
			if !ok {
				continue
			}
			b.pmu.Lock()
			c := b.pending[id]
			b.pmu.Unlock()
			if c != nil {
				select {
				case c <- []byte(a):
				default:
				}
			}
		}
	}()
	return nil
}

// Serve implements realtime.Broker over Redis pub/sub: it subscribes to
// node's call channel (and again after a broken connection, as go-redis
// does). It returns an error wrapping realtime.ErrBrokerClosed when the
// Broker is closed.
func (b *Broker) Serve(ctx context.Context, node string, answer func(ctx context.Context, req []byte) []byte) error {
	if b.closed.Load() {
		return errClosed("serve")
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ps := b.client.Subscribe(sctx, b.callChannel(node))
	defer ps.Close()
	// Wait for the subscription, so that calls made after it find the
	// node. If Redis cannot be reached, the channel below subscribes
	// when it can (go-redis resubscribes after every broken connection).
	_, _ = ps.Receive(sctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	ch := ps.Channel(redis.WithChannelSize(1024))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.closing:
			return errClosed("serve")
		case m, ok := <-ch:
			if !ok {
				return errClosed("serve")
			}
			reply, rest, ok1 := strings.Cut(m.Payload, "\n")
			id, req, ok2 := strings.Cut(rest, "\n")
			if !ok1 || !ok2 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := answer(sctx, []byte(req))
				octx, cancel := context.WithTimeout(b.ctx, max(b.timeout, time.Second))
				defer cancel()
				b.client.Publish(octx, reply, append([]byte(id+"\n"), a...))
			}()
		}
	}
}
