package partverify_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/partverify"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/worker"
)

const ttl = 10 * time.Second

// rig is a source and a destination with every command recorded, the sync's metadata on the
// destination, and the partitions the copy works on.
type rig struct {
	read, sent *sandboxtest.Commands // what went to the source, and to the destination
	src, dst   *mongo.Client
	meta       *metadata.DB
	partitions *partition.Store
	store      *partverify.Store
}

func newRig(t *testing.T) *rig {
	t.Helper()
	c := sandboxtest.Pair(t)
	r := &rig{read: sandboxtest.NewCommands(), sent: sandboxtest.NewCommands()}
	r.src = sandboxtest.ConnectWith(t, c.Source, mongoconn.Options{Monitor: r.read.Monitor()})
	r.dst = sandboxtest.ConnectWith(t, c.Destination, mongoconn.Options{Monitor: r.sent.Monitor()})
	r.meta = metadata.Open(r.dst, namespace.DefaultMetadataDB, "default")
	r.partitions = partition.NewStore(r.meta.Collection(metadata.CollPartitions), "default")
	r.store = partverify.NewStore(r.meta, 0)
	if err := r.store.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// seed inserts docs into ns on the source and splits ns into ranges.
func (r *rig) seed(t *testing.T, ns string, docs []any, ranges ...partition.Range) {
	t.Helper()
	if _, err := r.source(ns).InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	if err := r.partitions.Replace(context.Background(), ns, ranges); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) source(ns string) *mongo.Collection      { return coll(r.src, ns) }
func (r *rig) destination(ns string) *mongo.Collection { return coll(r.dst, ns) }

func coll(c *mongo.Client, ns string) *mongo.Collection {
	db, name, _ := strings.Cut(ns, ".")
	return c.Database(db).Collection(name)
}

// copyAll copies every partition with the real copy worker, as the sync's copy phase does.
func (r *rig) copyAll(t *testing.T) {
	t.Helper()
	w := worker.New(worker.Config{Source: r.src, Destination: r.dst, Partitions: r.partitions, Owner: "copier", LeaseTTL: ttl})
	for range 100 {
		res, err := w.CopyOne(context.Background(), nil)
		if res == worker.NothingToClaim {
			return
		}
		if res != worker.Copied {
			t.Fatalf("copying: %v, %v", res, err)
		}
	}
	t.Fatal("the copy did not finish in 100 partitions")
}

func (r *rig) verifier(owner string, batch int, leaseTTL time.Duration) *partverify.Verifier {
	return partverify.New(partverify.Config{Source: r.src, Destination: r.dst, Store: r.store, Owner: owner, LeaseTTL: leaseTTL, BatchDocs: batch})
}

// verifyAll runs v until nothing is left to claim, and fails on anything but a verified partition.
func verifyAll(t *testing.T, v *partverify.Verifier) int {
	t.Helper()
	for n := 0; n < 100; n++ {
		res, err := v.VerifyOne(context.Background(), nil)
		if res == partverify.NothingToClaim {
			return n
		}
		if res != partverify.Verified || err != nil {
			t.Errorf("VerifyOne: %v, %v", res, err)
			return n
		}
	}
	t.Error("verification did not finish in 100 partitions")
	return 100
}

func (r *rig) docs(t *testing.T) map[string]partverify.Doc {
	t.Helper()
	all, err := r.store.All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]partverify.Doc{}
	for _, d := range all {
		out[d.ID] = d
	}
	return out
}

// raw is v as a BSON value, to compare with stored _ids.
func raw(v any) bson.RawValue {
	t, b, err := bson.MarshalValue(v)
	if err != nil {
		panic(err)
	}
	return bson.RawValue{Type: t, Value: b}
}

// show is an _id with its type, for messages and for comparing _ids exactly.
func show(v bson.RawValue) string { return fmt.Sprintf("%s(%s)", v.Type, v) }

// sameID reports whether two _ids are the same value of the same type.
func sameID(a, b bson.RawValue) bool { return bsonorder.Key(a) == bsonorder.Key(b) }

// oid is a fixed ObjectId, so that their order is known.
func oid(i int) primitive.ObjectID {
	var id primitive.ObjectID
	id[0], id[10], id[11] = 0x65, byte(i>>8), byte(i)
	return id
}

// Ranks of the _id types the tests use.
var (
	numbers   = bsonorder.TypeRank(bson.TypeInt64)
	strs      = bsonorder.TypeRank(bson.TypeString)
	objectIDs = bsonorder.TypeRank(bson.TypeObjectID)
)

// mixedIDs returns n _ids of each of the types a collection may mix: numbers (int32, int64 and
// doubles between them, so that neither the bytes nor the type order within numbers is MongoDB's
// order), strings and ObjectIds.
func mixedIDs(n int) []any {
	var ids []any
	for i := range n {
		switch i % 3 {
		case 0:
			ids = append(ids, int32(i))
		case 1:
			ids = append(ids, int64(i))
		default:
			ids = append(ids, float64(i)+0.25)
		}
		ids = append(ids, fmt.Sprintf("s-%04d", i), oid(i))
	}
	return ids
}

// docsFor makes a document per _id, in a shuffled order: the server, not the insertion, orders them.
func docsFor(ids []any) []any {
	docs := make([]any, len(ids))
	for i, id := range ids {
		docs[i] = bson.D{{Key: "_id", Value: id}, {Key: "n", Value: i}, {Key: "sku", Value: fmt.Sprintf("sku-%d", i%97)}}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(docs), func(i, j int) { docs[i], docs[j] = docs[j], docs[i] })
	return docs
}

// typedRanges splits n mixedIDs into ranges of one type each, numbers in three.
func typedRanges(n int) []partition.Range {
	third := int64(n / 3)
	return []partition.Range{
		{Rank: numbers, Max: raw(third)},
		{Rank: numbers, Min: raw(third), Max: raw(2 * third)},
		{Rank: numbers, Min: raw(2 * third)},
		{Rank: strs, Max: raw(fmt.Sprintf("s-%04d", n/2))},
		{Rank: strs, Min: raw(fmt.Sprintf("s-%04d", n/2))},
		{Rank: objectIDs},
	}
}

func mustUpdate(t *testing.T, c *mongo.Collection, filter, update bson.D) {
	t.Helper()
	if res, err := c.UpdateOne(context.Background(), filter, update); err != nil || res.ModifiedCount != 1 {
		t.Fatalf("updating %v: %v, %v", filter, res, err)
	}
}

func mustDelete(t *testing.T, c *mongo.Collection, filter bson.D) {
	t.Helper()
	if res, err := c.DeleteOne(context.Background(), filter); err != nil || res.DeletedCount != 1 {
		t.Fatalf("deleting %v: %v, %v", filter, res, err)
	}
}

func mustInsert(t *testing.T, c *mongo.Collection, doc bson.D) {
	t.Helper()
	if _, err := c.InsertOne(context.Background(), doc); err != nil {
		t.Fatalf("inserting %v: %v", doc, err)
	}
}
