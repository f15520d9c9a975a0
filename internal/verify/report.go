package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// jsonReport is the --json shape. Field names follow mongosync's camelCase.
type jsonReport struct {
	Equal      bool            `json:"equal"`
	Summary    jsonSummary     `json:"summary"`
	Namespaces []jsonNamespace `json:"namespaces"`
}

type jsonSummary struct {
	Namespaces          int     `json:"namespaces"`
	DifferentNamespaces int     `json:"differentNamespaces"`
	DocumentsCompared   int64   `json:"documentsCompared"`
	Seconds             float64 `json:"seconds"`
}

type jsonNamespace struct {
	Namespace        string       `json:"namespace"`
	Equal            bool         `json:"equal"`
	Collection       string       `json:"collection,omitempty"`
	SourceDocs       int64        `json:"sourceDocs"`
	DestinationDocs  int64        `json:"destinationDocs"`
	Missing          int64        `json:"missing"`
	Extra            int64        `json:"extra"`
	Different        int64        `json:"different"`
	OptionDiffs      []string     `json:"optionDiffs"`
	IndexDiffs       []string     `json:"indexDiffs"`
	IndexWarnings    []string     `json:"indexWarnings"`
	PendingCommit    []string     `json:"pendingCommit"`
	FirstDifferences []jsonSample `json:"firstDifferences"`
}

type jsonSample struct {
	ID   json.RawMessage `json:"_id"` // relaxed extended JSON, so ObjectIds and UUIDs stay typed
	Kind string          `json:"kind"`
}

// MarshalJSON renders the report as one JSON object.
func (r *Report) MarshalJSON() ([]byte, error) {
	out := jsonReport{Equal: r.Equal(), Namespaces: []jsonNamespace{}}
	for i := range r.Namespaces {
		n := &r.Namespaces[i]
		jn := jsonNamespace{
			Namespace: n.NS.String(), Equal: n.Equal(), Collection: collectionState(n.Collection),
			SourceDocs: n.SourceDocs, DestinationDocs: n.DestinationDocs,
			Missing: n.Missing, Extra: n.Extra, Different: n.Different,
			OptionDiffs: nonNil(n.OptionDiffs), IndexDiffs: nonNil(n.IndexDiffs), IndexWarnings: nonNil(n.IndexWarnings), PendingCommit: nonNil(n.PendingCommit),
			FirstDifferences: []jsonSample{},
		}
		for _, s := range n.Samples {
			jn.FirstDifferences = append(jn.FirstDifferences, jsonSample{ID: json.RawMessage(extJSON(s.ID)), Kind: s.Kind})
		}
		if !jn.Equal {
			out.Summary.DifferentNamespaces++
		}
		out.Namespaces = append(out.Namespaces, jn)
	}
	out.Summary.Namespaces = len(r.Namespaces)
	out.Summary.DocumentsCompared = r.DocumentsCompared()
	out.Summary.Seconds = r.Elapsed.Seconds()
	return json.Marshal(out)
}

func collectionState(kind string) string {
	switch kind {
	case KindMissing:
		return "missing on destination"
	case KindExtra:
		return "extra on destination"
	}
	return ""
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// textSamples is how many differing _ids the text report shows per namespace; --json has them all.
const textSamples = 3

// WriteText writes one row per namespace, the details of each difference beneath its row, and a
// closing summary line.
func (r *Report) WriteText(w io.Writer) error {
	// Numbers align right; padding every namespace to one width keeps that column left-aligned.
	nsWidth := len("NAMESPACE")
	for i := range r.Namespaces {
		nsWidth = max(nsWidth, len(r.Namespaces[i].NS.String()))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tSOURCE DOCS\tDEST DOCS\tMISSING\tEXTRA\tDIFFERENT\tINDEXES\tRESULT\t\n", nsWidth, "NAMESPACE")
	var details, warnings []string
	different, pending := 0, 0
	for i := range r.Namespaces {
		n := &r.Namespaces[i]
		result := "equal"
		if !n.Equal() {
			result = "DIFFERENT"
			different++
		}
		indexes := "same"
		if len(n.IndexDiffs) > 0 {
			indexes = fmt.Sprintf("%d diff", len(n.IndexDiffs))
		} else if len(n.PendingCommit) > 0 {
			indexes = "same*"
			pending += len(n.PendingCommit)
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", nsWidth, n.NS, n.SourceDocs, n.DestinationDocs,
			n.Missing, n.Extra, n.Different, indexes, result)
		for _, w := range n.IndexWarnings {
			warnings = append(warnings, "  "+n.NS.String()+" "+w)
		}
		if n.Equal() {
			continue
		}
		details = append(details, n.NS.String()+":")
		if c := collectionState(n.Collection); c != "" {
			details = append(details, "  collection "+c)
		}
		for _, d := range n.OptionDiffs {
			details = append(details, "  "+d)
		}
		for _, d := range n.IndexDiffs {
			details = append(details, "  "+d)
		}
		if len(n.Samples) > 0 {
			var ids []string
			for _, s := range n.Samples[:min(len(n.Samples), textSamples)] {
				ids = append(ids, s.Kind+" "+show(s.ID))
			}
			more := ""
			if len(n.Samples) > textSamples {
				more = fmt.Sprintf(", … (--json lists the first %d)", len(n.Samples))
			}
			details = append(details, "  first documents: "+strings.Join(ids, ", ")+more)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(details) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.Join(details, "\n"))
	}
	if len(warnings) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "index warnings (not differences):")
		fmt.Fprintln(w, strings.Join(warnings, "\n"))
	}
	if pending > 0 {
		fmt.Fprintf(w, "\n* %d index setting(s) (unique, TTL expiry) are left out on the destination while the sync runs, as its catalog records; commit restores them.\n", pending)
	}
	fmt.Fprintln(w)
	docs := r.DocumentsCompared()
	rate := float64(docs) / max(r.Elapsed.Seconds(), 1e-9)
	if different == 0 {
		_, err := fmt.Fprintf(w, "EQUAL: %d namespaces, %d documents compared in %.1fs (%.0f docs/s)\n",
			len(r.Namespaces), docs, r.Elapsed.Seconds(), rate)
		return err
	}
	_, err := fmt.Fprintf(w, "DIFFERENT: %d of %d namespaces differ; %d documents compared in %.1fs\n",
		different, len(r.Namespaces), docs, r.Elapsed.Seconds())
	return err
}
