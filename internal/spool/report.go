package spool

import (
	"fmt"
	"strings"
	"time"
)

// What /progress says about the capture, computed from its document and the applier's count of
// entries applied from the spool, so that nothing more has to be stored for it.

// LagWarningSeconds is the capture lag that /progress warns about. The capture only reads and
// appends, so it normally trails the source by a second or two; a takeover (the lease TTL, 10 s by
// default, and a reconnect) or a destination electing a new primary (10 to 30 s) holds it back for
// well under a minute. Five minutes behind is none of those: the capturer is stuck or the
// destination cannot take the writes. It is also a third of preflight.MinOplogWindow, the least
// window a sync starts with, so the warning comes while there is still time to act.
const LagWarningSeconds = 300

// oldestShare is the part of the oplog window, at its old end, where a position is at risk of
// falling off: the capture's position within the oldest tenth is warned about, the same rule the
// applier applies to its own resume point.
const oldestShare = 10

// Waiting is how many captured events the applier has not applied from the spool yet; never
// below 0 (the two counts are written by different nodes at different times), and 0 once the
// capture is done: the applier then reads the source, which gives it the events captured after its
// switch, and the spool is cleared.
func Waiting(c Capture, applied int64) int64 {
	if c.Done {
		return 0
	}
	return max(c.Captured-applied, 0)
}

// WaitingBytes estimates the size of the events still waiting in the spool: the captured bytes'
// average entry size times the entries waiting. The spool is trimmed behind the applier, so this is
// about what it holds on the destination now.
func WaitingBytes(c Capture, applied int64) int64 {
	if c.Captured <= 0 || c.CapturedBytes <= 0 {
		return 0
	}
	return int64(float64(c.CapturedBytes) / float64(c.Captured) * float64(Waiting(c, applied)))
}

// LagWarning says, in one sentence, why the capture's position is at risk of falling off the
// source's oplog, naming the numbers and what to do; "" when it is not (or the capture is over).
// capturer names the node holding the capture lease ("" when none does).
func LagWarning(c Capture, capturer string) string {
	if c.Done || c.Position == nil {
		return ""
	}
	var why []string
	lag := c.LagSeconds()
	if lag > LagWarningSeconds {
		why = append(why, fmt.Sprintf("is %.0f s behind the source (warned above %d s)", lag, LagWarningSeconds))
	}
	oldest, newest, pos := int64(c.OplogOldest.T), int64(c.OplogNewest.T), int64(c.Position.TS.T)
	if !c.OplogOldest.IsZero() && newest > oldest && (pos-oldest)*oldestShare < newest-oldest {
		why = append(why, fmt.Sprintf("has its position %d s from the oldest entry of the source's oplog, which spans %d s (within its oldest tenth)",
			max(pos-oldest, 0), newest-oldest))
	}
	if len(why) == 0 {
		return ""
	}
	who := "no node holds the capture lease"
	if capturer != "" {
		who = "the capturing node is " + capturer
	}
	return fmt.Sprintf("the capture of change events %s (position %s, checkpointed %s): events that fall off the oplog before they are captured are lost "+
		"and the sync must start again; %s: check its log and the destination's write latency, and grow the source's oplog (replSetResizeOplog)",
		strings.Join(why, " and "), formatTS(c), c.UpdatedAt.UTC().Format(time.RFC3339), who)
}

func formatTS(c Capture) string {
	return fmt.Sprintf("Timestamp(%d, %d)", c.Position.TS.T, c.Position.TS.I)
}
