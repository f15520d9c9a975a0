package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/mongo"

	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/web"
)

// Info strings of /progress, mongosync's where it has one for the phase.
var phaseInfo = map[string]string{
	metadata.PhaseCatalog: "collection copy", // mongosync reports its preparation as part of the copy
	metadata.PhaseCopy:    "collection copy",
	metadata.PhaseIndexes: "index build",
	metadata.PhaseApply:   "change event application",
}

// Start implements web.Service: IDLE → RUNNING, whichever node is asked, after the preflight checks.
func (n *node) Start(ctx context.Context, req web.StartRequest) error {
	if req.Source != "cluster0" || req.Destination != "cluster1" {
		return web.BadRequest("InvalidRequest",
			"source and destination must be \"cluster0\" and \"cluster1\" (got %q and %q): fleetsync syncs the --cluster0 cluster to the --cluster1 cluster",
			req.Source, req.Destination)
	}
	s, err := n.meta.Sync(ctx)
	if err != nil {
		return err
	}
	if s.State != metadata.StateIdle {
		return stateError(&metadata.StateError{Call: "start", State: s.State})
	}
	opts, err := n.preflight(ctx, req)
	if err != nil {
		return err
	}
	if err := n.meta.Start(ctx, opts); err != nil {
		return stateError(err)
	}
	n.log.Info("sync started through the API", zap.String("buildIndexes", opts.BuildIndexes),
		zap.String("writeBlocking", opts.WriteBlocking), zap.Bool("verification", opts.Verification),
		zap.Int("includeRules", len(opts.Include)), zap.Int("excludeRules", len(opts.Exclude)))
	return nil
}

// Pause implements web.Service: RUNNING → PAUSED. Workers hand back their partitions and the
// applier stops, each after the batch in flight.
func (n *node) Pause(ctx context.Context) error {
	if err := n.meta.Pause(ctx); err != nil {
		return stateError(err)
	}
	n.log.Info("sync paused through the API")
	return nil
}

// Resume implements web.Service: PAUSED → RUNNING, from the checkpoints.
func (n *node) Resume(ctx context.Context) error {
	if err := n.meta.Resume(ctx); err != nil {
		return stateError(err)
	}
	n.log.Info("sync resumed through the API")
	return nil
}

// Commit implements web.Service: RUNNING with canCommit → COMMITTING; the coordinator carries the
// commit out and moves the sync to COMMITTED.
func (n *node) Commit(ctx context.Context) error {
	p, err := n.Progress(ctx)
	if err != nil {
		return err
	}
	if p.State != metadata.StateRunning {
		return stateError(&metadata.StateError{Call: "commit", State: p.State})
	}
	if !p.CanCommit {
		return web.Conflict("CommitNotAllowed", "cannot commit yet: %s; call /commit again once /progress shows canCommit: true", whyNotCommit(p))
	}
	if err := n.meta.RequestCommit(ctx); err != nil {
		return stateError(err)
	}
	n.log.Info("commit requested through the API")
	return nil
}

// whyNotCommit says why canCommit is false.
func whyNotCommit(p web.Progress) string {
	switch {
	case p.Fleet.Phase != metadata.PhaseApply:
		return fmt.Sprintf("the sync is still in its %s phase (%s)", p.Fleet.Phase, p.Info)
	case p.Fleet.Applier != nil && p.Fleet.Applier.Error != "":
		return "change event application is failing: " + p.Fleet.Applier.Error
	case p.LagTimeSeconds == nil:
		return "the applier has not reported its lag yet"
	default:
		return fmt.Sprintf("the destination is %d s behind the source (canCommit needs under %d s)", *p.LagTimeSeconds, commitLagSeconds)
	}
}

// Reverse implements web.Service: COMMITTED → REVERSING (→ RUNNING, by the coordinator), for a sync
// started with reversible: true.
func (n *node) Reverse(ctx context.Context) error {
	s, err := n.meta.Sync(ctx)
	if err != nil {
		return err
	}
	if s.State != metadata.StateCommitted {
		return stateError(&metadata.StateError{Call: "reverse", State: s.State})
	}
	if !s.Options.Reversible {
		return web.Conflict("ReverseNotAllowed", "cannot reverse: the sync was started without \"reversible\": true; start a new sync from cluster1 to cluster0 instead")
	}
	if err := n.meta.RequestReverse(ctx); err != nil {
		return stateError(err)
	}
	n.log.Info("reverse requested through the API")
	return nil
}

// RetryPartitions implements web.Service: the partitions given up on after partition.MaxAttempts
// failures in a row are claimed again, from their checkpoints, with a fresh count. Legal whenever
// such partitions exist (a PAUSED sync's are claimed once it resumes), and in a RUNNING copy phase,
// where none to retry is a harmless answer of 0.
func (n *node) RetryPartitions(ctx context.Context) (int64, error) {
	s, err := n.meta.Sync(ctx)
	if err != nil {
		return 0, err
	}
	retried, err := n.partitions.RetryFailed(ctx)
	if err != nil {
		return 0, err
	}
	if retried == 0 && !copying(&s) {
		return 0, web.Conflict("NoFailedPartitions", "cannot retry partitions: none has failed, and the sync is %s in its %s phase, not copying", s.State, s.Phase)
	}
	if retried > 0 {
		n.log.Info("failed partitions retried through the API", zap.Int64("partitions", retried))
	}
	return retried, nil
}

// stateError turns a *metadata.StateError into the API's 409 answer; other errors pass.
func stateError(err error) error {
	var se *metadata.StateError
	if errors.As(err, &se) {
		return web.Conflict("InvalidStateTransition", "%v", se)
	}
	return err
}

// Progress implements web.Service from the shared state, so every node answers alike.
func (n *node) Progress(ctx context.Context) (web.Progress, error) {
	s, err := n.meta.Sync(ctx)
	if err != nil {
		return web.Progress{}, err
	}
	sum, err := n.partitions.Summarize(ctx)
	if err != nil {
		return web.Progress{}, err
	}
	source := n.clusters(&s).source
	p := web.Progress{
		State: s.State,
		Info:  stateInfo(&s),
		CollectionCopy: web.CollectionCopy{
			EstimatedTotalBytes:  s.EstimatedTotalBytes,
			EstimatedCopiedBytes: sum.BytesCopied,
		},
		DirectionMapping: web.DirectionMapping{
			Source:      "cluster0: " + strings.Join(n.srcID.Hosts, ","),
			Destination: "cluster1: " + strings.Join(n.dstID.Hosts, ","),
		},
		CanWrite:    s.State == metadata.StateCommitted,
		Source:      web.Ping{PingLatencyMs: pingMs(ctx, n.source)},
		Destination: web.Ping{PingLatencyMs: pingMs(ctx, n.destination)},
		MongosyncID: n.cfg.Name,
		Warnings:    append(append([]string{}, s.Options.PreflightWarnings...), s.Warnings...),
		Fleet: web.Fleet{
			SyncID: n.cfg.SyncID, Phase: s.Phase, Node: n.cfg.Name,
			Partitions:      web.PartitionCount{Total: sum.Total, Done: sum.Done, Active: sum.Active, Failed: sum.Failed},
			DocumentsCopied: sum.DocsCopied, EstimatedTotalDocs: s.EstimatedTotalDocs, Error: s.Error,
		},
	}
	if s.Reversed {
		p.DirectionMapping.Source, p.DirectionMapping.Destination = p.DirectionMapping.Destination, p.DirectionMapping.Source
		p.Fleet.Reversed = true
	}
	p.Verification = verificationProgress(&s)
	if c := s.Commit; c != nil {
		p.Fleet.Commit = commitProgress(c)
		if c.Failure != "" {
			p.Warnings = append(p.Warnings, c.Failure)
		}
	}
	if s.Owner != "" {
		p.CoordinatorID = displayName(s.Owner)
		p.Fleet.Coordinator = &web.LeaseHolder{Node: p.CoordinatorID, Epoch: s.Epoch}
	}
	if !s.StartAtOperationTime.IsZero() {
		p.Fleet.StartAtOperationTime = &web.OpTime{T: s.StartAtOperationTime.T, I: s.StartAtOperationTime.I}
	}
	for _, m := range n.members.Load().Members() {
		p.Fleet.Nodes = append(p.Fleet.Nodes, web.Node{Name: m.Name, Alive: m.Alive, Registered: m.Registered, API: m.APIAddr})
		if m.Alive {
			p.Fleet.NodesAlive++
		}
	}
	if s.State != metadata.StateIdle {
		// One read of the checkpoint serves the applier's figures and the capture's.
		ck, ckOK, err := applier.ReadCheckpoint(ctx, n.meta)
		if err != nil {
			return web.Progress{}, err
		}
		if s.Phase == metadata.PhaseApply {
			n.applierProgress(ctx, &p, source, ck, ckOK)
			if s.State != metadata.StateRunning {
				p.CanCommit = false // only a RUNNING sync can be committed
			}
		}
		if err := n.windowProgress(ctx, &p, &s, source, ck, ckOK); err != nil {
			return web.Progress{}, err
		}
	}
	if sum.Failed > 0 {
		failed, err := n.partitions.Failed(ctx, failedPartitionsShown)
		if err != nil {
			return web.Progress{}, err
		}
		for _, f := range failed {
			p.Fleet.FailedPartitions = append(p.Fleet.FailedPartitions, web.FailedPartition{ID: f.ID, Namespace: f.NS, Range: f.Range.String(),
				Attempts: f.Attempts, DocumentsCopied: f.DocsCopied, LastError: f.LastError})
		}
		why := ""
		if len(failed) > 0 {
			why = fmt.Sprintf(" (%s: %s)", failed[0].NS, failed[0].LastError)
		}
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d partition(s) failed %d times in a row and are no longer retried%s; "+
			"fix the cause, then POST /api/v1/fleet/partitions/retry", sum.Failed, partition.MaxAttempts, why))
	}
	return p, nil
}

// failedPartitionsShown bounds fleet.failedPartitions in /progress: the first few say why; the
// count is in fleet.partitions.failed.
const failedPartitionsShown = 10

// terminalInfo is /progress's info once the applier has stopped for good: the sync stays RUNNING,
// as mongosync's state does when it stops on such an error, but nothing moves any more.
const terminalInfo = "change event application stopped: start a new sync"

// commitLagSeconds is mongosync's bound: canCommit needs the lag under 30 seconds.
const commitLagSeconds = 30

// applierProgress fills the change-event fields of p from the applier's checkpoint ck (ok false
// when it has none yet): lag against the source's latest optime, events applied, the catch-up
// estimate, canCommit, and the applier's warnings.
func (n *node) applierProgress(ctx context.Context, p *web.Progress, source *mongo.Client, ck applier.Checkpoint, ok bool) {
	a := &web.Applier{}
	p.Fleet.Applier = a
	if !ok {
		return
	}
	if ck.Owner != "" {
		a.Node = displayName(ck.Owner)
	}
	a.Epoch, a.Source, a.Error = ck.Epoch, ck.Source, ck.Error
	if ck.Terminal != "" {
		a.Failed = true
		p.Warnings = append(p.Warnings, "change event application stopped for good: "+ck.Terminal)
		if p.State == metadata.StateRunning {
			p.Info = terminalInfo
		}
	}
	a.EventsApplied, a.CRUDApplied, a.DDLApplied, a.Refreshed = ck.EventsApplied, ck.CRUDApplied, ck.DDLApplied, ck.Refreshed
	a.CatchupRate, a.CheckpointAt = ck.CatchupRate, ck.UpdatedAt
	p.Warnings = append(p.Warnings, ck.Warnings.Messages()...)
	total := ck.EventsApplied
	p.TotalEventsApplied = &total
	if ck.Position == nil {
		return
	}
	a.AppliedThrough = &web.OpTime{T: ck.Position.TS.T, I: ck.Position.TS.I}
	latest, err := clusterclock.Now(ctx, source)
	if err != nil {
		// The lag is unknown, not zero: leave it null rather than fail the whole progress call.
		n.log.Debug("cannot read the source's latest optime for the lag", zap.Error(err))
		return
	}
	a.SourceLatest = &web.OpTime{T: latest.T, I: latest.I}
	lag := int64(0)
	if latest.After(ck.Position.TS) {
		lag = max(int64(latest.T)-int64(ck.Position.TS.T), 0)
	}
	p.LagTimeSeconds = &lag
	p.Lag = &web.Lag{OverallLagSeconds: lag, CRUDLagSeconds: lag, DDLLagSeconds: lag}
	p.EstimatedSecondsToCEACatchup = catchupEstimate(lag, ck.CatchupRate)
	p.CanCommit = ck.Error == "" && lag < commitLagSeconds
}

// catchupEstimate is how long the applier needs to catch up a lag (seconds of source time) at its
// measured rate (source seconds applied per second): the backlog shrinks by rate - 1 source seconds
// per second while the source keeps writing. nil means unknown: no rate measured yet, or the
// applier is not gaining on the source.
func catchupEstimate(lag int64, rate float64) *int64 {
	est := int64(0)
	switch {
	case lag <= 0:
	case rate > 1:
		est = int64(math.Ceil(float64(lag) / (rate - 1)))
	default:
		return nil
	}
	return &est
}

// stateInfo is /progress's info: mongosync's sentences where it has them.
func stateInfo(s *metadata.Sync) string {
	switch s.State {
	case metadata.StateIdle:
		return "waiting for start"
	case metadata.StatePaused:
		return "paused"
	case metadata.StateCommitting:
		return "waiting for commit to complete"
	case metadata.StateCommitted:
		return "commit completed"
	case metadata.StateReversing:
		return "reversing"
	}
	return phaseInfo[s.Phase]
}

// pingMs times a ping to a cluster in milliseconds; -1 when it fails, as mongosync reports.
func pingMs(ctx context.Context, client *mongo.Client) int64 {
	start := time.Now()
	if err := client.Ping(ctx, nil); err != nil {
		return -1
	}
	return time.Since(start).Milliseconds()
}

// commitProgress is the fleet's view of a commit.
func commitProgress(c *metadata.Commit) *web.Commit {
	out := &web.Commit{Step: c.Step, RequestedAt: c.RequestedAt, SourceBlocked: c.SourceBlocked, Restored: c.Restored, Failure: c.Failure}
	if !c.Point.IsZero() {
		out.Point = &web.OpTime{T: c.Point.T, I: c.Point.I}
	}
	end := time.Now()
	if !c.CommittedAt.IsZero() {
		end = c.CommittedAt
		out.CommittedAt = &c.CommittedAt
	}
	if !c.RequestedAt.IsZero() && c.Failure == "" {
		out.PauseSeconds = end.Sub(c.RequestedAt).Seconds()
	}
	return out
}

// verificationProgress is mongosync's verification object, null while the verifier is off.
func verificationProgress(s *metadata.Sync) *web.Verification {
	if s.State == metadata.StateIdle || !s.Options.Verification {
		return nil
	}
	v := s.Verification
	if v == nil {
		side := web.VerificationSide{Phase: "not started"}
		return &web.Verification{Source: side, Destination: side}
	}
	side := func(docs int64) web.VerificationSide {
		scanned := v.Namespaces
		if v.Phase == metadata.VerificationInProgress {
			scanned = 0
		}
		return web.VerificationSide{EstimatedDocumentCount: docs, HashedDocumentCount: docs,
			TotalCollectionCount: v.Namespaces, ScannedCollectionCount: scanned, Phase: v.Phase}
	}
	out := &web.Verification{Source: side(v.SourceDocuments), Destination: side(v.DestinationDocuments), Differences: v.Differences}
	if v.Phase == metadata.VerificationPassed || v.Phase == metadata.VerificationFailed {
		out.Result = v.Phase
	}
	return out
}
