package namespace

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, db, coll string
		ok           bool
	}{
		{"shop.orders", "shop", "orders", true},
		{"shop.orders.2024", "shop", "orders.2024", true}, // collection names may hold dots
		{"shop", "", "", false},
		{".orders", "", "", false},
		{"shop.", "", "", false},
	} {
		ns, err := Parse(tc.in)
		if (err == nil) != tc.ok || ns.DB != tc.db || ns.Coll != tc.coll {
			t.Errorf("Parse(%q) = %+v, %v", tc.in, ns, err)
		}
	}
	list, err := ParseList(" a.b, c.d ,,")
	if err != nil || len(list) != 2 || list[1].String() != "c.d" {
		t.Fatalf("ParseList: %v, %v", list, err)
	}
	if _, err := ParseList("a.b,c"); err == nil {
		t.Fatal("ParseList accepted an entry without a collection")
	}
}

func TestFilterKeepsOnlyUserNamespaces(t *testing.T) {
	f := Filter{}
	for ns, want := range map[string]bool{
		"shop.orders":               true,
		"shop.system.profile":       false,
		"shop.system.views":         false,
		"weather.system.buckets.w":  false,
		"admin.users":               false,
		"local.oplog.rs":            false,
		"config.transactions":       false,
		"fleetsync_internal.leases": false,
		"fleetsync_internalx.data":  true,
	} {
		n, _ := Parse(ns)
		if got := f.User(n); got != want {
			t.Errorf("User(%s) = %v, want %v", ns, got, want)
		}
	}
	custom := Filter{MetadataDB: "fs_meta"}
	if custom.UserDatabase("fs_meta") || !custom.UserDatabase(DefaultMetadataDB) {
		t.Fatal("a custom metadata database replaces the default one")
	}
}
