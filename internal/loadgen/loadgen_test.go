package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/seed"
)

// seeded returns a client of a fresh source server holding the seed's six collections.
func seeded(t *testing.T, docs int) *mongo.Client {
	t.Helper()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	if _, err := seed.Seed(context.Background(), client, seed.Options{Docs: docs, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return client
}

func countAll(t *testing.T, client *mongo.Client) int64 {
	t.Helper()
	var total int64
	for _, c := range seed.Plan(seed.Options{Seed: 1}) {
		n, err := client.Database(c.DB).Collection(c.Name).CountDocuments(context.Background(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// docState is what the plan says a document should look like after the run.
type docState struct {
	ns      namespace.Namespace
	id      bson.RawValue
	exists  bool
	counter int64 // lgCounter (0: absent or reset by an insert or replacement)
	events  int   // length of lgEvents
	lastOp  int64 // op of the last pushed event
	checked bool  // an $inc or $push targeted it
}

// TestRunWritesEveryKindAsPlanned runs the load against seeded data and checks the outcome the way a
// user of the change stream would: every kind of write happened without errors, the document count
// moved by exactly inserts minus deletes, and every document that an $inc or a $push picked holds
// exactly the counter and array that replaying the plan predicts.
func TestLoadRunWritesEveryKindAsPlanned(t *testing.T) {
	ctx := context.Background()
	client := seeded(t, 2000)
	before := countAll(t, client)
	nss, err := resolveNamespaces(ctx, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(nss) != 6 {
		t.Fatalf("found %d collections to write to, want the seed's 6: %v", len(nss), nss)
	}
	targets, err := loadTargets(ctx, client, nss) // what Run will read too: the data is the same
	if err != nil {
		t.Fatal(err)
	}

	var reports int
	stats, err := Run(ctx, client, Options{Rate: 500, Duration: 2 * time.Second, Seed: 5, Report: func(Stats) { reports++ }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s in %s", stats, stats.Elapsed)
	if stats.ErrorCount() != 0 || stats.Missed != 0 {
		t.Fatalf("errors or missed writes: %s; first errors: %v", stats, stats.FirstErrors)
	}
	for k, n := range stats.Done {
		if n == 0 {
			t.Errorf("no %s in %s", Kind(k), stats)
		}
	}
	if reports == 0 {
		t.Errorf("Report was never called in a %s run", stats.Elapsed)
	}
	if got, want := countAll(t, client)-before, stats.Done[Insert]-stats.Done[Delete]; got != want {
		t.Fatalf("document count changed by %d, want inserts-deletes = %d", got, want)
	}

	// Replay the plan: Run executed exactly the writes it planned, each document's in plan order.
	docs := map[string]*docState{}
	state := func(o op) *docState {
		key := o.ns.String() + "\x00" + bsonorder.Key(o.id)
		if docs[key] == nil {
			docs[key] = &docState{ns: o.ns, id: o.id, exists: true}
		}
		return docs[key]
	}
	p := newPlanner(5, DefaultMix, targets)
	for range stats.Ops() {
		o := p.next()
		d := state(o)
		switch o.kind {
		case Insert, Replace:
			d.exists, d.counter, d.events = true, 0, 0
		case Delete:
			d.exists = false
		case Inc:
			d.counter += o.update[0].Value.(bson.D)[0].Value.(int64)
			d.checked = true
		case Push:
			d.events = min(d.events+1, eventsKept)
			d.lastOp = o.index
			d.checked = true
		}
	}
	checked := 0
	for _, d := range docs {
		if !d.checked {
			continue
		}
		checked++
		var got struct {
			Counter int64 `bson:"lgCounter"`
			Events  []struct {
				Op int64 `bson:"op"`
			} `bson:"lgEvents"`
		}
		err := client.Database(d.ns.DB).Collection(d.ns.Coll).FindOne(ctx, bson.D{{Key: "_id", Value: d.id}}).Decode(&got)
		if !d.exists {
			if err != mongo.ErrNoDocuments {
				t.Errorf("%s _id %s should be deleted: %v", d.ns, idText(d.id), err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s _id %s: %v", d.ns, idText(d.id), err)
		}
		if got.Counter != d.counter || len(got.Events) != d.events || (d.events > 0 && got.Events[len(got.Events)-1].Op != d.lastOp) {
			t.Errorf("%s _id %s holds lgCounter %d and %d events, want %d and %d (last from op %d)",
				d.ns, idText(d.id), got.Counter, len(got.Events), d.counter, d.events, d.lastOp)
		}
	}
	if checked < 50 {
		t.Fatalf("only %d documents got an $inc or $push", checked)
	}

	// The same seed again on the changed data: new _ids continue after the first run's, and unique
	// values stay unique, so nothing collides.
	again, err := Run(ctx, client, Options{Rate: 500, Duration: 500 * time.Millisecond, Seed: 5, Mix: Mix{Insert: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if again.ErrorCount() != 0 || again.Done[Insert] == 0 {
		t.Fatalf("second run with the same seed: %s; first errors: %v", again, again.FirstErrors)
	}
}

func TestLoadRunStopsWhenTheContextEnds(t *testing.T) {
	client := seeded(t, 300)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	stats, err := Run(ctx, client, Options{Rate: 200, Seed: 1}) // no Duration: until ctx ends
	if err != nil {
		t.Fatal(err)
	}
	if stats.Ops() == 0 || stats.ErrorCount() != 0 {
		t.Fatalf("got %s; first errors: %v", stats, stats.FirstErrors)
	}
}

func TestLoadRunRejectsBadOptions(t *testing.T) {
	client := seeded(t, 60)
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{}, "rate must be above 0"},
		{Options{Rate: 10, Duration: -time.Second}, "duration must be 0"},
		{Options{Rate: 10, Mix: Mix{Set: -1, Insert: 2}}, "set weight"},
		{Options{Rate: 10, Namespaces: []namespace.Namespace{{DB: "shop", Coll: "nope"}}}, "shop.nope is not a collection"},
	} {
		_, err := Run(context.Background(), client, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Run(%+v) = %v, want an error saying %q", c.opts, err, c.want)
		}
	}
}
