package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/realtime-go/realtime"
)

// nodeSubject is where node answers calls.
func (b *Broker) nodeSubject(node string) string {
	return b.prefix + ".n." + token(node)
}

// Call sends req to node with a core NATS request (not JetStream: a
// call to a dead node is meant to fail, not wait). No subscriber on the
// node's subject is realtime.ErrNoNode.
func (b *Broker) Call(ctx context.Context, node string, req []byte) ([]byte, error) {
	if b.closed() {
		return nil, errClosed
	}
	rctx, cancel := b.requestContext(ctx)
	defer cancel()
	m, err := b.nc.RequestWithContext(rctx, b.nodeSubject(node), req)
	if errors.Is(err, nats.ErrNoResponders) || err == nil && m.Header.Get(noNodeHeader) != "" {
		return nil, fmt.Errorf("natsbroker: call %q: %w", node, realtime.ErrNoNode)
	}
	if err != nil {
		return nil, b.fail(ctx, "call", err)
	}
	return m.Data, nil
}

// noNodeHeader marks the answer of a node that stopped serving.
const noNodeHeader = "Realtime-No-Node"

// Serve answers the calls to node, each on its own goroutine, until ctx
// ends or the broker is closed. It subscribes in a queue group, so that
// a call is answered once even while two Serve calls of one name
// overlap (a node restarting). It returns once every answer has
// returned.
func (b *Broker) Serve(ctx context.Context, node string, answer func(ctx context.Context, req []byte) []byte) error {
	if b.closed() {
		return errClosed
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(b.life, cancel)
	defer stop()
	var (
		mu   sync.Mutex
		done bool
		wg   sync.WaitGroup
	)
	sub, err := b.nc.QueueSubscribe(b.nodeSubject(node), "serve", func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if done {
			// A call that came while Serve was ending: say so, rather
			// than let the caller wait out its timeout.
			r := nats.NewMsg(m.Reply)
			r.Header.Set(noNodeHeader, "1")
			_ = m.RespondMsg(r)
			return
		}
		wg.Go(func() {
			// The caller gave up or the node is going: no answer.
			_ = m.Respond(answer(ctx, m.Data))
		})
	})
	if err != nil {
		return b.fail(ctx, "serve", err)
	}
	// Make sure the server has the subscription before a caller could
	// count on it; while disconnected it is sent on reconnect.
	fctx, fcancel := context.WithTimeout(ctx, DefaultRequestTimeout)
	if b.opts.RequestTimeout > 0 {
		fcancel()
		fctx, fcancel = b.requestContext(ctx)
	}
	err = b.nc.FlushWithContext(fctx)
	fcancel()
	if err != nil && ctx.Err() == nil && b.nc.IsConnected() {
		_ = sub.Unsubscribe()
		return b.fail(ctx, "serve", err)
	}
	<-ctx.Done()
	mu.Lock()
	done = true
	mu.Unlock()
	// Drain, so that the calls the server sent before it heard of the
	// unsubscribe are answered (with noNodeHeader), not dropped.
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	if sub.Drain() == nil {
		t := time.NewTimer(DefaultRequestTimeout)
		select {
		case <-closed:
		case <-t.C:
		}
		t.Stop()
	}
	_ = sub.Unsubscribe()
	wg.Wait()
	if parent.Err() == nil && b.closed() {
		return errClosed
	}
	return parent.Err()
}
