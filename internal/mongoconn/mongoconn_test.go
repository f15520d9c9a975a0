package mongoconn

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRedactHidesPasswordsOnly(t *testing.T) {
	for in, want := range map[string]string{
		"mongodb://127.0.0.1:27017/":                               "mongodb://127.0.0.1:27017/",
		"mongodb://alice:secret@h1:1,h2:2/db?replicaSet=rs":        "mongodb://alice:xxxxx@h1:1,h2:2/db?replicaSet=rs",
		"mongodb+srv://bob:p%40ss%3Aword@cluster.example.net/?w=1": "mongodb+srv://bob:xxxxx@cluster.example.net/?w=1",
		"mongodb://carol@h/?authMechanism=MONGODB-X509":            "mongodb://carol@h/?authMechanism=MONGODB-X509",
		"not a uri": "not a uri",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// Errors quote the URI; neither the escaped nor the unescaped password may appear in them.
func TestConnectErrorsNeverCarryThePassword(t *testing.T) {
	ctx := context.Background()
	for _, uri := range []string{
		"mongodb://u:p%40ssw0rd@127.0.0.1:1/?connectTimeoutMS=notanumber",
		"mongodb://u:p%40ssw0rd@127.0.0.1:1/",
	} {
		_, err := Connect(ctx, "cluster0", uri, 200*time.Millisecond)
		if err == nil {
			t.Fatalf("%s: connected to nothing", uri)
		}
		for _, secret := range []string{"p%40ssw0rd", "p@ssw0rd"} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows the password: %v", err)
			}
		}
		if !strings.HasPrefix(err.Error(), "cluster0: ") {
			t.Fatalf("error does not name the cluster: %v", err)
		}
	}
}
