package lease

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// The Keeper's timing, as fractions of the lease's TTL so that one rule serves a 10 s coordinator
// lease and a 300 ms test lease alike. All durations are measured on this node's monotonic clock
// from just before the last successful acquire or renew was sent, which is never later than the
// server's renewedAt: the holder's own view of its lease can only be shorter than the server's.
const (
	// renewDivisor: renew every TTL/3, so that two consecutive renewals can fail (a slow primary,
	// a dropped connection) and a third still has time to land before the lease expires.
	renewDivisor = 3

	// retryDivisor: after a failed renewal (an error, not a loss), retry every TTL/10 rather than
	// waiting a full renew interval, since the stop deadline below is getting closer.
	retryDivisor = 10

	// stopMarginDivisor: when no renewal has succeeded for TTL - TTL/5, the Keeper gives up and
	// cancels the holder's context. The remaining TTL/5 is the holder's time to notice and stop
	// before another node can take over; its fenced writes are rejected after expiry anyway, but
	// work that is not fenced (reads, logs, side effects) should stop first.
	stopMarginDivisor = 5
)

// Kept is a lease kept alive by a goroutine started by [Keep]. Its context is cancelled, and Done
// closed, as soon as the lease is lost, cannot be renewed in time, or the Keeper is stopped.
type Kept struct {
	lease  Lease
	until  atomic.Pointer[time.Time] // see ValidUntil
	ctx    context.Context
	cancel context.CancelCauseFunc
	exited chan struct{}
}

// errStopped is the cause of a Kept stopped by its holder.
var errStopped = errors.New("lease keeper stopped")

// Keep renews l on store every TTL/3 until ctx is cancelled, Stop is called, or the lease is lost.
// The holder does the lease's work under Context() (or watches Done()) and must stop when it is done:
// that happens when a renewal says the lease is lost (taken over, expired, released), and also when
// no renewal has succeeded for TTL - TTL/5, so that the holder stops before the lease can expire
// while it cannot reach the server. Err then says why.
//
// Keep does not release the lease: call Stop, then [Store.Release].
func Keep(ctx context.Context, store *Store, l Lease) *Kept {
	kctx, cancel := context.WithCancelCause(ctx)
	k := &Kept{lease: l, ctx: kctx, cancel: cancel, exited: make(chan struct{})}
	k.setUntil(l.sentAt)
	go k.run(store)
	return k
}

// Lease is the lease being kept.
func (k *Kept) Lease() Lease { return k.lease }

// Context is cancelled when the lease can no longer be relied on; do the lease's work under it.
func (k *Kept) Context() context.Context { return k.ctx }

// ValidUntil is the moment (on this node's monotonic clock) until which the holder may still act on
// the lease as last renewed: TTL - TTL/5 after the last successful renewal was sent. Work that no
// fenced write can protect (the applier's data writes) checks it synchronously and runs under it as
// a deadline, rather than waiting for Context to be cancelled: a process that was frozen (SIGSTOP,
// a long GC pause) wakes up with its clock already past this moment, before the renewing goroutine
// has had a chance to notice.
func (k *Kept) ValidUntil() time.Time {
	if k.ctx.Err() != nil {
		return time.Time{}
	}
	return *k.until.Load()
}

func (k *Kept) setUntil(sentAt time.Time) {
	until := sentAt.Add(k.lease.TTL - k.lease.TTL/stopMarginDivisor)
	k.until.Store(&until)
}

// WaitOut waits until deadline, the deadline of a write sent under the lease whose outcome is
// unknown (no answer came): it may still run on the server until then, so its holder does not let
// the work go to anyone else before. It returns early when the lease is gone: no successor starts
// before the lease expires, which is after any deadline taken from ValidUntil.
func (k *Kept) WaitOut(deadline time.Time) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-t.C:
	case <-k.ctx.Done():
	}
}

// Done is closed when the lease can no longer be relied on.
func (k *Kept) Done() <-chan struct{} { return k.ctx.Done() }

// Err is nil while the lease is kept; afterwards it says why it ended: a *LostError (errors.Is
// ErrLost) when it was lost or could not be renewed in time, or the cause of the parent context or
// of Stop.
func (k *Kept) Err() error {
	if k.ctx.Err() == nil {
		return nil
	}
	return context.Cause(k.ctx)
}

// Stop stops renewing and waits for the renewing goroutine to exit. It does not release the lease.
func (k *Kept) Stop() {
	k.cancel(errStopped)
	<-k.exited
}

func (k *Kept) run(store *Store) {
	defer close(k.exited)
	l := k.lease
	renewEvery := l.TTL / renewDivisor
	retryEvery := l.TTL / retryDivisor
	stopAfter := l.TTL - l.TTL/stopMarginDivisor
	sentAt := l.sentAt
	if sentAt.IsZero() {
		// A Lease not from this Store: we do not know when it was last renewed, so renew at once
		// and give ourselves as little time as possible.
		sentAt = time.Now().Add(-renewEvery)
	}

	wait := time.Until(sentAt.Add(renewEvery))
	var lastErr error
	for {
		deadline := sentAt.Add(stopAfter)
		if time.Until(deadline) <= 0 {
			k.cancel(&LostError{Name: l.Name, Owner: l.Owner, Epoch: l.Epoch, Err: lastErr,
				Reason: fmt.Sprintf("no renewal succeeded within %s of its %s TTL, so its holder must stop before it expires (last error: %v)",
					stopAfter, l.TTL, lastErr)})
			return
		}
		timer := time.NewTimer(min(max(wait, 0), time.Until(deadline)))
		select {
		case <-k.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if time.Until(deadline) <= 0 {
			continue // report above
		}

		// A renewal that has not answered by the deadline is as good as failed.
		rctx, cancel := context.WithDeadline(k.ctx, deadline)
		renewed, err := store.Renew(rctx, l)
		cancel()
		switch {
		case err == nil:
			l, sentAt, lastErr = renewed, renewed.sentAt, nil
			k.setUntil(sentAt)
			wait = time.Until(sentAt.Add(renewEvery))
		case errors.Is(err, ErrLost):
			k.cancel(err)
			return
		case k.ctx.Err() != nil:
			return
		default:
			lastErr = err
			wait = retryEvery
		}
	}
}
