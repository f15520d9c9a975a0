package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/verify"
	"github.com/fleetsync/fleetsync/web"
)

// Two nodes copy a database with real MongoDB's collection options (validator, collation), a view,
// mixed _id types split into several partitions, and unique and TTL indexes; the copy's start time
// comes from the source's cluster time. The destination must verify equal, with the unique and TTL
// settings reported as restored at commit.
//
// The sync catalogs every user database of the source (namespace filters come with the lifecycle
// API): run the suite on clusters dedicated to it.
func TestTwoNodesCopyRealClusters(t *testing.T) {
	source, destination := clusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db := scratchDB(t, source, destination)
	metaDB := db + "_meta"
	t.Cleanup(func() { _ = destination.Database(metaDB).Drop(context.Background()) })

	err := source.Database(db).CreateCollection(ctx, "people", options.CreateCollection().
		SetValidator(bson.D{{Key: "name", Value: bson.D{{Key: "$type", Value: "string"}}}}).
		SetCollation(&options.Collation{Locale: "en", Strength: 2}))
	if err != nil {
		t.Fatal(err)
	}
	var people []any
	for i := range 3000 {
		var id any = int64(i)
		switch i % 3 {
		case 1:
			id = fmt.Sprintf("p-%05d", i)
		case 2:
			id = primitive.NewObjectID()
		}
		people = append(people, bson.D{{Key: "_id", Value: id}, {Key: "name", Value: fmt.Sprintf("Person %d", i)},
			{Key: "email", Value: fmt.Sprintf("p%d@example.com", i)}, {Key: "seen", Value: time.Now().UTC()},
			{Key: "pad", Value: strings.Repeat("x", 500)}})
	}
	if _, err := source.Database(db).Collection("people").InsertMany(ctx, people); err != nil {
		t.Fatal(err)
	}
	_, err = source.Database(db).Collection("people").Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)},
		{Keys: bson.D{{Key: "seen", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(86400 * 365 * 50)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := source.Database(db).CreateView(ctx, "named", "people", bson.A{bson.D{{Key: "$project", Value: bson.D{{Key: "name", Value: 1}}}}}); err != nil {
		t.Fatal(err)
	}

	api := startNodes(t, ctx, db, metaDB, "") // "": the default, auto
	resp, err := http.Post(api+"/start", "application/json", strings.NewReader(startBody(db)))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("start: %v %v", resp, err)
	}
	resp.Body.Close()
	var p web.Progress
	for p.Fleet.Phase != metadata.PhaseApply {
		if ctx.Err() != nil {
			t.Fatalf("copy did not complete: %+v", p)
		}
		time.Sleep(200 * time.Millisecond)
		p = getProgress(t, api)
		if p.Fleet.Error != "" {
			t.Fatalf("sync error: %s", p.Fleet.Error)
		}
	}
	if p.Fleet.StartAtOperationTime == nil || p.Fleet.StartAtOperationTime.T == 0 {
		t.Errorf("no start time from the source's cluster time: %+v", p.Fleet)
	}
	if p.Fleet.Partitions.Total < 3 {
		t.Errorf("%d partitions; the mixed _id types alone should make 3", p.Fleet.Partitions.Total)
	}

	report, err := verify.Run(ctx, source, destination, verify.Options{MetadataDB: metaDB,
		Include: []namespace.Namespace{{DB: db, Coll: "people"}, {DB: db, Coll: "named"}}})
	if err != nil {
		t.Fatal(err)
	}
	pending := 0
	for _, n := range report.Namespaces {
		pending += len(n.PendingCommit)
		if !n.Equal() {
			t.Errorf("%s differs: options %v, indexes %v, missing %d, extra %d, different %d",
				n.NS, n.OptionDiffs, n.IndexDiffs, n.Missing, n.Extra, n.Different)
		}
	}
	if pending != 2 {
		t.Errorf("%d index settings pending commit, want 2 (unique email, TTL seen)", pending)
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitHTTP(t *testing.T, url string) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
	}
	t.Fatalf("%s did not answer within a minute", url)
}

func getProgress(t *testing.T, api string) web.Progress {
	resp, err := http.Get(api + "/progress")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Progress web.Progress `json:"progress"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Progress
}
