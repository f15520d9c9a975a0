// Package verify compares two clusters namespace by namespace: collection existence, type and options,
// index specifications, document counts, and every document by _id and content.
//
// Both sides are streamed in _id order and merge-joined, so memory stays flat whatever the data size:
// each namespace holds a few batches per side, never a collection. The order of _id values follows
// MongoDB's comparison rules (package bsonorder), the same order the servers sort by.
package verify

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// Defaults for Options' zero values.
const (
	// DefaultConcurrency namespaces are compared at once; each uses one cursor per side. Exported so
	// benchmarks can read at exactly the verifier's concurrency.
	DefaultConcurrency = 4
	// defaultMaxSamples is how many differing _ids a report keeps per namespace.
	defaultMaxSamples = 10
)

// Options tune a verification. The zero value compares every user namespace, field order included.
type Options struct {
	// Include limits the comparison to these namespaces; each must exist on at least one side.
	Include []namespace.Namespace
	// IgnoreFieldOrder treats documents whose fields differ only in order as equal (arrays keep order).
	IgnoreFieldOrder bool
	// MetadataDB is fleetsync's own database, never compared (namespace.DefaultMetadataDB when empty).
	MetadataDB string
	// Include and Exclude are a sync's namespace filter rules (mongosync's includeNamespaces and
	// excludeNamespaces): only the namespaces they select are compared, on both sides.
	IncludeRules, ExcludeRules []namespace.Rule
	// Concurrency is how many namespaces are compared at once.
	Concurrency int
	// MaxSamples is how many differing _ids are kept per namespace.
	MaxSamples int
}

// Report is the result of Run.
type Report struct {
	Namespaces []NamespaceReport
	Elapsed    time.Duration
}

// Equal reports whether every namespace is equal.
func (r *Report) Equal() bool {
	for i := range r.Namespaces {
		if !r.Namespaces[i].Equal() {
			return false
		}
	}
	return true
}

// DocumentsCompared is the number of documents read from both sides together.
func (r *Report) DocumentsCompared() int64 {
	var n int64
	for _, ns := range r.Namespaces {
		n += ns.SourceDocs + ns.DestinationDocs
	}
	return n
}

// Difference kinds for documents.
const (
	KindMissing   = "missing"   // on the source, not on the destination
	KindExtra     = "extra"     // on the destination, not on the source
	KindDifferent = "different" // on both, with different content
)

// Sample is one differing document.
type Sample struct {
	ID   bson.RawValue
	Kind string
}

// NamespaceReport is the comparison of one namespace.
type NamespaceReport struct {
	NS namespace.Namespace
	// Collection is "" when the namespace exists on both sides, else KindMissing or KindExtra.
	Collection                  string
	SourceDocs, DestinationDocs int64
	Missing, Extra, Different   int64
	OptionDiffs, IndexDiffs     []string
	// IndexWarnings lists index options equal to the servers that differ in number type (int32 on
	// one side, int64 on the other): not differences, but worth knowing.
	IndexWarnings []string
	// PendingCommit lists destination index settings a running sync left out on purpose (recorded in
	// its metadata catalog) and restores at commit; they do not count as differences.
	PendingCommit []string
	Samples       []Sample // the first MaxSamples differing documents, in _id order
}

// Equal reports whether the namespace is the same on both sides.
func (n *NamespaceReport) Equal() bool {
	return n.Collection == "" && n.Missing == 0 && n.Extra == 0 && n.Different == 0 &&
		len(n.OptionDiffs) == 0 && len(n.IndexDiffs) == 0
}

// UnknownNamespaceError is returned when an included namespace exists on neither cluster.
type UnknownNamespaceError struct {
	NS namespace.Namespace
}

func (e *UnknownNamespaceError) Error() string {
	return fmt.Sprintf("namespace %s exists on neither cluster; check the spelling or drop it from --include", e.NS)
}

// Run compares source and destination. An error means the comparison could not be completed; a
// completed comparison, equal or not, is a Report.
func Run(ctx context.Context, source, destination *mongo.Client, opts Options) (*Report, error) {
	start := time.Now()
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.MaxSamples <= 0 {
		opts.MaxSamples = defaultMaxSamples
	}
	filter := namespace.Filter{MetadataDB: opts.MetadataDB, Include: opts.IncludeRules, Exclude: opts.ExcludeRules}
	srcColls, err := catalog.ListCollections(ctx, source, filter)
	if err != nil {
		return nil, fmt.Errorf("reading the source catalog: %w", err)
	}
	dstColls, err := catalog.ListCollections(ctx, destination, filter)
	if err != nil {
		return nil, fmt.Errorf("reading the destination catalog: %w", err)
	}
	pairs, err := pairCollections(srcColls, dstColls, opts.Include, filter)
	if err != nil {
		return nil, err
	}
	deferred, err := deferredIndexChanges(ctx, destination, filter.MetadataDatabase())
	if err != nil {
		return nil, err
	}

	reports := make([]NamespaceReport, len(pairs))
	errs := make([]error, len(pairs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < opts.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				reports[i], errs[i] = compareNamespace(ctx, source, destination, pairs[i], deferred[pairs[i].ns.String()], opts)
				if errs[i] != nil {
					cancel() // one failure ends the run; the others would be reported as context errors
				}
			}
		}()
	}
	for i := range pairs {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("comparing %s: %w", pairs[i].ns, err)
		}
	}
	return &Report{Namespaces: reports, Elapsed: time.Since(start)}, nil
}

// collectionPair is one namespace with its catalog entry on each side (nil where absent).
type collectionPair struct {
	ns       namespace.Namespace
	src, dst *catalog.Collection
}

func pairCollections(src, dst []catalog.Collection, include []namespace.Namespace, filter namespace.Filter) ([]collectionPair, error) {
	byNS := map[namespace.Namespace]*collectionPair{}
	get := func(ns namespace.Namespace) *collectionPair {
		p := byNS[ns]
		if p == nil {
			p = &collectionPair{ns: ns}
			byNS[ns] = p
		}
		return p
	}
	for i := range src {
		get(src[i].NS).src = &src[i]
	}
	for i := range dst {
		get(dst[i].NS).dst = &dst[i]
	}
	var out []collectionPair
	if len(include) > 0 {
		seen := map[namespace.Namespace]bool{}
		for _, ns := range include {
			if !filter.Selected(ns) {
				return nil, fmt.Errorf("%s is not compared: it is a system or fleetsync metadata namespace, or the namespace filter leaves it out", ns)
			}
			p, ok := byNS[ns]
			if !ok {
				return nil, &UnknownNamespaceError{NS: ns}
			}
			if !seen[ns] {
				seen[ns] = true
				out = append(out, *p)
			}
		}
	} else {
		for _, p := range byNS {
			out = append(out, *p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ns.String() < out[j].ns.String() })
	return out, nil
}

func compareNamespace(ctx context.Context, source, destination *mongo.Client, p collectionPair, deferred map[string]metadata.DeferredIndexChange, opts Options) (NamespaceReport, error) {
	r := NamespaceReport{NS: p.ns}
	switch {
	case p.dst == nil:
		r.Collection = KindMissing
	case p.src == nil:
		r.Collection = KindExtra
	default:
		r.OptionDiffs = compareCollectionSpecs(*p.src, *p.dst)
		srcIdx, err := catalog.ListIndexes(ctx, source, p.ns)
		if err != nil {
			return r, err
		}
		dstIdx, err := catalog.ListIndexes(ctx, destination, p.ns)
		if err != nil {
			return r, err
		}
		if dstIdx, r.PendingCommit, err = restoreDeferred(dstIdx, deferred); err != nil {
			return r, err
		}
		r.IndexDiffs, r.IndexWarnings = compareIndexes(srcIdx, dstIdx)
	}
	// A view's documents are derived from its source collection, which is compared on its own.
	if (p.src != nil && !p.src.HasDocuments()) || (p.dst != nil && !p.dst.HasDocuments()) {
		return r, nil
	}
	// Reading an absent collection yields no documents, so a collection missing on one side reports all
	// of the other side's documents, with the first ones as samples.
	err := compareDocuments(ctx,
		source.Database(p.ns.DB).Collection(p.ns.Coll),
		destination.Database(p.ns.DB).Collection(p.ns.Coll),
		opts, &r)
	return r, err
}
