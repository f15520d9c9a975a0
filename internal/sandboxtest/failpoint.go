package sandboxtest

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// FailPoint makes chosen commands fail on a server, with MongoDB's failCommand fail point (the
// sandbox's fault injection sandboxFailCommand, docs/test-servers.md): the commands get a real
// error reply with Code and Labels, or their connection closed, on the wire.
type FailPoint struct {
	Commands  []string // command names, e.g. "insert"
	Namespace string   // "db.coll": only commands on it; "": any
	Code      int32
	Labels    []string
	// CloseConnection drops the connection instead of answering: the driver sees a network error.
	CloseConnection bool
	// Times is how many commands fail; 0: every one until the fail point is turned off.
	Times int
}

// FailCommand turns fp on for the server client is connected to, and off when the test ends.
func FailCommand(t testing.TB, client *mongo.Client, fp FailPoint) {
	t.Helper()
	var mode any = "alwaysOn"
	if fp.Times > 0 {
		mode = bson.D{{Key: "times", Value: fp.Times}}
	}
	data := bson.D{{Key: "failCommands", Value: fp.Commands}, {Key: "errorCode", Value: fp.Code},
		{Key: "closeConnection", Value: fp.CloseConnection}}
	if len(fp.Labels) > 0 {
		data = append(data, bson.E{Key: "errorLabels", Value: fp.Labels})
	}
	if fp.Namespace != "" {
		data = append(data, bson.E{Key: "namespace", Value: fp.Namespace})
	}
	configure(t, client, mode, data)
	t.Cleanup(func() { configure(t, client, "off", bson.D{}) })
}

// FailPointCount is how many commands the server's fail point failed since it was last configured
// (and leaves it off).
func FailPointCount(t testing.TB, client *mongo.Client) int {
	t.Helper()
	return configure(t, client, "off", bson.D{})
}

func configure(t testing.TB, client *mongo.Client, mode any, data bson.D) int {
	t.Helper()
	var reply struct {
		Count int `bson:"count"`
	}
	err := client.Database("admin").RunCommand(context.Background(), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: mode}, {Key: "data", Value: data},
	}).Decode(&reply)
	if err != nil {
		t.Fatalf("configuring the failCommand fail point: %v", err)
	}
	return reply.Count
}
