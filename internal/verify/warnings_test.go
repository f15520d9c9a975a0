package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/verify"
)

// An index whose options differ only in number type (expireAfterSeconds 3600 as int32 on one side,
// int64 on the other) is the same index to the servers, so the namespace stays equal; the report
// still lists the difference as an index warning, in text and in --json, so that a rebuild that
// changed a type is seen.
func TestVerifyWarnsAboutNumberTypesInIndexOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pair := sandboxtest.Pair(t)
	src, dst := sandboxtest.Connect(t, pair.Source), sandboxtest.Connect(t, pair.Destination)
	for client, secs := range map[*mongo.Client]any{src: int32(3600), dst: int64(3600)} {
		if _, err := client.Database("app").Collection("sessions").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			t.Fatal(err)
		}
		spec := bson.D{{Key: "key", Value: bson.D{{Key: "seen", Value: 1}}}, {Key: "name", Value: "seen_1"}, {Key: "expireAfterSeconds", Value: secs}}
		if err := client.Database("app").RunCommand(ctx, bson.D{{Key: "createIndexes", Value: "sessions"}, {Key: "indexes", Value: bson.A{spec}}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	report, err := verify.Run(ctx, src, dst, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !report.Equal() {
		t.Fatalf("number types in index options made the clusters different: %+v", report.Namespaces)
	}
	want := "index seen_1: expireAfterSeconds is 3600 (int32) on source, 3600 (int64) on destination"
	var text bytes.Buffer
	if err := report.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), want) || !strings.Contains(text.String(), "EQUAL") {
		t.Errorf("the text report does not warn %q:\n%s", want, text.String())
	}
	raw, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Equal      bool `json:"equal"`
		Namespaces []struct {
			IndexWarnings []string `json:"indexWarnings"`
		} `json:"namespaces"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Equal || len(out.Namespaces) != 1 || len(out.Namespaces[0].IndexWarnings) != 1 || !strings.Contains(out.Namespaces[0].IndexWarnings[0], want) {
		t.Errorf("--json does not list the index warning %q: %s", want, raw)
	}
}
