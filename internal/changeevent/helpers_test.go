package changeevent

import (
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/namespace"
)

// ejson reads a document written in relaxed Extended JSON, the way mongosh and the docs print
// what the server sends. Field order is kept. A typo in a test document is a bug in the test.
func ejson(s string) bson.Raw {
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(s), false, &doc); err != nil {
		panic(fmt.Sprintf("test document is not Extended JSON: %v\n%s", err, s))
	}
	return doc
}

// setOf turns {"path": value, ...} into the Set list a description holds, in order.
func setOf(s string) bson.D {
	elems, _ := ejson(s).Elements()
	set := bson.D{}
	for _, e := range elems {
		set = append(set, bson.E{Key: e.Key(), Value: e.Value()})
	}
	return set
}

func ns(s string) namespace.Namespace {
	n, err := namespace.Parse(s)
	if err != nil {
		panic(err)
	}
	return n
}

func ts(t, i uint32) primitive.Timestamp { return primitive.Timestamp{T: t, I: i} }

// render writes every field of the events, one per line, so that two lists compare as strings
// and a failure shows both in full.
func render(events []Event) string {
	var b strings.Builder
	for _, ev := range events {
		fmt.Fprintf(&b, "%s %s at %d,%d\n", ev.Op, nsString(ev.NS), ev.ClusterTime.T, ev.ClusterTime.I)
		field := func(name string, doc bson.Raw) {
			if doc != nil {
				fmt.Fprintf(&b, "  %s: %s\n", name, doc)
			}
		}
		field("resumeToken", ev.ResumeToken)
		field("documentKey", ev.DocumentKey)
		field("fullDocument", ev.FullDocument)
		switch {
		case ev.Update != nil:
			b.WriteString("  update:\n")
			for _, t := range ev.Update.Truncate {
				fmt.Fprintf(&b, "    truncate %s to %d\n", t.Path, t.NewSize)
			}
			for _, e := range ev.Update.Set {
				fmt.Fprintf(&b, "    set %s = %s\n", e.Key, renderValue(e.Value))
			}
			for _, p := range ev.Update.Unset {
				fmt.Fprintf(&b, "    unset %s\n", p)
			}
		case ev.Op == Update:
			b.WriteString("  update: refresh\n")
		}
		if ev.To != (namespace.Namespace{}) || ev.DropTarget {
			fmt.Fprintf(&b, "  to: %s, dropTarget: %v\n", nsString(ev.To), ev.DropTarget)
		}
		field("options", ev.Options)
		for _, spec := range ev.Indexes {
			field("index", spec)
		}
		if ev.IndexNames != nil {
			fmt.Fprintf(&b, "  indexNames: %q\n", ev.IndexNames)
		}
		if ev.Description != "" {
			fmt.Fprintf(&b, "  description: %s\n", ev.Description)
		}
	}
	return b.String()
}

func renderValue(v any) string {
	if rv, ok := v.(bson.RawValue); ok {
		return rv.String()
	}
	return fmt.Sprintf("%#v (not a bson.RawValue)", v)
}

// checkEvents compares the whole of two event lists.
func checkEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if g, w := render(got), render(want); g != w {
		t.Errorf("events differ\n got:\n%s\nwant:\n%s", g, w)
	}
}
