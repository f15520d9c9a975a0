package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/web"
)

// Info strings of /progress, mongosync's where it has one for the phase.
var phaseInfo = map[string]string{
	metadata.PhaseCatalog: "collection copy", // mongosync reports its preparation as part of the copy
	metadata.PhaseCopy:    "collection copy",
	metadata.PhaseIndexes: "index build",
	metadata.PhaseApply:   "change event application",
}

// Start implements web.Service: IDLE → RUNNING, whichever node is asked.
func (n *node) Start(ctx context.Context, req web.StartRequest) error {
	if req.Source != "cluster0" || req.Destination != "cluster1" {
		return web.BadRequest("InvalidRequest",
			"source and destination must be \"cluster0\" and \"cluster1\" (got %q and %q): fleetsync syncs the --cluster0 cluster to the --cluster1 cluster",
			req.Source, req.Destination)
	}
	// Preflight: without a start time the change events after the copy could not be applied, so a
	// source that cannot give one is refused now rather than after the copy.
	if _, err := coordinator.SourceClock(ctx, n.source); err != nil {
		return web.BadRequest("InvalidSource", "%v", err)
	}
	if _, err := applier.CheckSource(ctx, n.source, n.cfg.ChangeSource); err != nil {
		return web.BadRequest("InvalidSource", "%v", err)
	}
	err := n.meta.Start(ctx)
	if errors.Is(err, metadata.ErrNotIdle) {
		s, rerr := n.meta.Sync(ctx)
		if rerr != nil {
			return rerr
		}
		return web.BadRequest("InvalidStateTransition",
			"cannot start: the sync %q is %s, and start is only allowed while it is IDLE", n.cfg.SyncID, s.State)
	}
	if err != nil {
		return err
	}
	n.log.Info("sync started through the API")
	return nil
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
	p := web.Progress{
		State: s.State,
		Info:  phaseInfo[s.Phase],
		CollectionCopy: web.CollectionCopy{
			EstimatedTotalBytes:  s.EstimatedTotalBytes,
			EstimatedCopiedBytes: sum.BytesCopied,
		},
		DirectionMapping: web.DirectionMapping{
			Source:      "cluster0: " + strings.Join(n.srcID.Hosts, ","),
			Destination: "cluster1: " + strings.Join(n.dstID.Hosts, ","),
		},
		MongosyncID: n.cfg.Name,
		Warnings:    append([]string{}, s.Warnings...),
		Fleet: web.Fleet{
			SyncID: n.cfg.SyncID, Phase: s.Phase, Node: n.cfg.Name,
			Partitions:      web.PartitionCount{Total: sum.Total, Done: sum.Done, Active: sum.Active, Failed: sum.Failed},
			DocumentsCopied: sum.DocsCopied, EstimatedTotalDocs: s.EstimatedTotalDocs, Error: s.Error,
		},
	}
	if s.State == metadata.StateIdle {
		p.Info = "waiting for start"
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
	if s.State == metadata.StateRunning && s.Phase == metadata.PhaseApply {
		if err := n.applierProgress(ctx, &p); err != nil {
			return web.Progress{}, err
		}
	}
	if sum.Failed > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d partition(s) failed repeatedly and are no longer retried", sum.Failed))
	}
	return p, nil
}

// commitLagSeconds is mongosync's bound: canCommit needs the lag under 30 seconds.
const commitLagSeconds = 30

// applierProgress fills the change-event fields of p: lag against the source's latest optime,
// events applied, the catch-up estimate, canCommit, and the applier's warnings.
func (n *node) applierProgress(ctx context.Context, p *web.Progress) error {
	ck, ok, err := applier.ReadCheckpoint(ctx, n.meta)
	if err != nil {
		return err
	}
	a := &web.Applier{}
	p.Fleet.Applier = a
	if !ok {
		return nil
	}
	if ck.Owner != "" {
		a.Node = displayName(ck.Owner)
	}
	a.Epoch, a.Source, a.Error = ck.Epoch, ck.Source, ck.Error
	a.EventsApplied, a.CRUDApplied, a.DDLApplied, a.Refreshed = ck.EventsApplied, ck.CRUDApplied, ck.DDLApplied, ck.Refreshed
	a.CatchupRate, a.CheckpointAt = ck.CatchupRate, ck.UpdatedAt
	p.Warnings = append(p.Warnings, ck.Warnings...)
	total := ck.EventsApplied
	p.TotalEventsApplied = &total
	if ck.Position == nil {
		return nil
	}
	a.AppliedThrough = &web.OpTime{T: ck.Position.TS.T, I: ck.Position.TS.I}
	latest, err := coordinator.SourceClock(ctx, n.source)
	if err != nil {
		// The lag is unknown, not zero: leave it null rather than fail the whole progress call.
		n.log.Debug("cannot read the source's latest optime for the lag", zap.Error(err))
		return nil
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
	return nil
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
