package applier

import (
	"context"
	"fmt"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/spool"
)

// spoolReader is the applier's reader until it has caught up with the capture: it reads the spool
// from the applier's position, and the first time it finds nothing more there it hands the writer a
// switch (events.switchAt) and goes on with the live source from there. There is no gap: everything
// up to the switch was applied from the spool, or was not the sync's (the capture skips it).
//
// It reads only up to the capture's checkpoint. Every record at or before that checkpoint is in the
// spool (a capturer appends a batch, then checkpoints it), but past it there can be holes: a deposed
// capturer, frozen with a batch in hand, may append records far ahead of its successor, and a reader
// that read them would skip, for ever, the records in between that the successor has yet to append.
//
// The switch is at the capture's checkpoint where the capture read the source the way the live
// reader will (the same kind of source): records up to it are all spooled or not the sync's, so the
// live reader need not go back to the last spooled record, which may be long gone from the source's
// oplog when the sync's namespaces are quiet and others are not. Otherwise it is after the last
// spooled record read.
type spoolReader struct {
	meta      *metadata.DB
	spool     *spool.Spool
	direction int64
	liveKind  string // the live source's kind (SourceOplog or SourceChangeStream)
	pos       Position
	inclusive bool
	captured  *spool.Capture // the capture as last read
	// open opens the live source's reader after pos (at pos when inclusive).
	open func(pos Position, inclusive bool) reader
	cur  reader // the live source's reader, once switched
}

func (r *spoolReader) next(ctx context.Context, max int) (events, Position, error) {
	if r.cur != nil {
		return r.cur.next(ctx, max)
	}
	entries, err := r.read(ctx, max)
	if err != nil {
		return events{}, r.pos, err
	}
	if len(entries) == 0 {
		at, inclusive := r.pos, r.inclusive
		if c := r.captured; c != nil && c.Position != nil && c.Source == r.liveKind && spool.Key(*c.Position) > spool.Key(r.pos) {
			at, inclusive = *c.Position, false
		}
		r.cur = r.open(at, inclusive)
		return events{switchAt: &at}, at, nil
	}
	var out events
	for _, e := range entries {
		evs, err := parseRecord(e.Kind, e.Raw)
		if err != nil {
			return events{}, r.pos, err
		}
		pos, err := entryPosition(e)
		if err != nil {
			return events{}, r.pos, err
		}
		out.list = append(out.list, evs...)
		out.ends = append(out.ends, len(out.list)-1)
		r.pos, r.inclusive = pos, false
	}
	return out, r.pos, nil
}

// read returns the spooled records after the position, through the capture's checkpoint.
func (r *spoolReader) read(ctx context.Context, max int) ([]spool.Entry, error) {
	c, ok, err := spool.ReadCapture(ctx, r.meta)
	if err != nil {
		return nil, err
	}
	if !ok || c.Position == nil || c.Direction != r.direction {
		r.captured = nil
		return nil, nil // nothing captured in this direction
	}
	r.captured = &c
	entries, err := r.spool.Read(ctx, r.pos, r.inclusive, max)
	if err != nil {
		return nil, err
	}
	through := spool.Key(*c.Position)
	for i, e := range entries {
		p, err := entryPosition(e)
		if err != nil {
			return nil, err
		}
		if spool.Key(p) > through {
			return entries[:i], nil
		}
	}
	return entries, nil
}

// entryPosition is the source position right after a spooled record.
func entryPosition(e spool.Entry) (Position, error) {
	switch e.Kind {
	case SourceChangeStream:
		return changeEventPosition(e.Raw)
	case SourceOplog:
		return Position{TS: e.TS}, nil
	}
	return Position{}, fmt.Errorf("a spool entry of unknown kind %q (%s): written by a newer fleetsync?", e.Kind, e.ID)
}

func (r *spoolReader) close(ctx context.Context) {
	if r.cur != nil {
		r.cur.close(ctx)
	}
}

// covered is how many of a batch's spool entries a checkpoint after events[i] covers (see events).
func (e events) covered(i int) int64 {
	n := int64(0)
	for _, end := range e.ends {
		if end <= i {
			n++
		}
	}
	return n
}
