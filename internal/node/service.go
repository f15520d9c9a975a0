package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/web"
)

// Info strings of /progress, mongosync's where it has one for the phase.
var phaseInfo = map[string]string{
	metadata.PhaseCatalog: "collection copy", // mongosync reports its preparation as part of the copy
	metadata.PhaseCopy:    "collection copy",
	metadata.PhaseIndexes: "index build",
	metadata.PhaseCopied:  "collection copy complete; change event application is not part of this version",
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
	if sum.Failed > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d partition(s) failed repeatedly and are no longer retried", sum.Failed))
	}
	return p, nil
}
