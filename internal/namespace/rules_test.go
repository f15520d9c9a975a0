package namespace

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
)

func rx(pattern, options string) *Regex { return &Regex{Pattern: pattern, Options: options} }

// cluster is the source every Selected case picks from: user data, look-alike names, and namespaces
// that are never user data.
var cluster = []string{
	"sales.orders", "sales.EMEA", "sales.APAC", "sales.accounts_2024", "sales.Accounts_2023",
	"sales.system.views", "sales_archive.orders", "marketing.leads", "marketing.campaigns",
	"hr.people", "admin.users", "config.transactions", "local.oplog.rs", "fleetsync_internal.leases",
}

func selected(t *testing.T, f Filter) []string {
	t.Helper()
	var got []string
	for _, s := range cluster {
		ns, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if f.Selected(ns) {
			got = append(got, s)
		}
	}
	return got
}

func TestSelected(t *testing.T) {
	allUser := []string{
		"sales.orders", "sales.EMEA", "sales.APAC", "sales.accounts_2024", "sales.Accounts_2023",
		"sales_archive.orders", "marketing.leads", "marketing.campaigns", "hr.people",
	}
	allSales := []string{"sales.orders", "sales.EMEA", "sales.APAC", "sales.accounts_2024", "sales.Accounts_2023"}
	for _, tc := range []struct {
		name string
		f    Filter
		want []string
	}{
		{"no rules selects every user namespace", Filter{}, allUser},
		{"include a database", Filter{Include: []Rule{{Database: "sales"}}}, allSales},
		{"include collections of one database and all of another",
			Filter{Include: []Rule{{Database: "sales", Collections: []string{"EMEA", "APAC"}}, {Database: "marketing"}}},
			[]string{"sales.EMEA", "sales.APAC", "marketing.leads", "marketing.campaigns"}},
		{"an empty collections list means the whole database",
			Filter{Include: []Rule{{Database: "hr", Collections: []string{}}}}, []string{"hr.people"}},
		{"unanchored databaseRegex matches anywhere in the name",
			Filter{Include: []Rule{{DatabaseRegex: rx("ales", "")}}}, append(slices.Clone(allSales), "sales_archive.orders")},
		{"anchored databaseRegex matches the whole name",
			Filter{Include: []Rule{{DatabaseRegex: rx("^sales$", "")}}}, allSales},
		{"databaseRegex with collections",
			Filter{Include: []Rule{{DatabaseRegex: rx("^sales", ""), Collections: []string{"orders"}}}},
			[]string{"sales.orders", "sales_archive.orders"}},
		{"collectionsRegex is case-sensitive by default",
			Filter{Include: []Rule{{Database: "sales", CollectionsRegex: rx("^accounts_", "")}}},
			[]string{"sales.accounts_2024"}},
		{"collectionsRegex with option i",
			Filter{Include: []Rule{{Database: "sales", CollectionsRegex: rx("^accounts_", "i")}}},
			[]string{"sales.accounts_2024", "sales.Accounts_2023"}},
		{"unanchored collectionsRegex",
			Filter{Include: []Rule{{DatabaseRegex: rx(".", ""), CollectionsRegex: rx("der", "")}}},
			[]string{"sales.orders", "sales_archive.orders"}},
		{"collectionsRegex with option x ignores spaces and comments",
			Filter{Include: []Rule{{Database: "sales", CollectionsRegex: rx("^ accounts_ \\d{4} $  # year", "x")}}},
			[]string{"sales.accounts_2024"}},
		{"collections and collectionsRegex add up",
			Filter{Include: []Rule{{Database: "sales", Collections: []string{"EMEA"}, CollectionsRegex: rx("^acc", "")}}},
			[]string{"sales.EMEA", "sales.accounts_2024"}},
		{"exclude a database",
			Filter{Exclude: []Rule{{Database: "sales"}}},
			[]string{"sales_archive.orders", "marketing.leads", "marketing.campaigns", "hr.people"}},
		{"exclude a collection name in every database",
			Filter{Exclude: []Rule{{DatabaseRegex: rx(".*", ""), CollectionsRegex: rx("^orders$", "")}}},
			[]string{"sales.EMEA", "sales.APAC", "sales.accounts_2024", "sales.Accounts_2023",
				"marketing.leads", "marketing.campaigns", "hr.people"}},
		{"exclude collections of an included database",
			Filter{Include: []Rule{{Database: "sales"}}, Exclude: []Rule{{Database: "sales", Collections: []string{"orders", "APAC"}}}},
			[]string{"sales.EMEA", "sales.accounts_2024", "sales.Accounts_2023"}},
		{"exclude wins over an include of the same collection",
			Filter{Include: []Rule{{Database: "sales", Collections: []string{"orders"}}}, Exclude: []Rule{{Database: "sales"}}},
			nil},
		{"exclude by regex inside an include by regex",
			Filter{Include: []Rule{{DatabaseRegex: rx("^SALES", "i")}}, Exclude: []Rule{{DatabaseRegex: rx("archive", "")}}},
			allSales},
		{"system and metadata namespaces are never selected",
			Filter{Include: []Rule{
				{Database: "admin"}, {Database: "local"}, {Database: "config"}, {Database: DefaultMetadataDB},
				{Database: "sales", Collections: []string{"system.views"}},
			}},
			nil},
		{"a match-all include still skips system and metadata namespaces",
			Filter{Include: []Rule{{DatabaseRegex: rx("", "")}}}, allUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := selected(t, tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("selected %q\nwant     %q", got, tc.want)
			}
		})
	}
}

func TestZeroFilterSelectsWhatUserDoes(t *testing.T) {
	var f Filter
	if f.HasRules() {
		t.Fatal("the zero Filter has rules")
	}
	for _, s := range cluster {
		ns, _ := Parse(s)
		if f.Selected(ns) != f.User(ns) {
			t.Errorf("Selected(%s) = %v, but User says %v", s, f.Selected(ns), f.User(ns))
		}
	}
	if !(Filter{Exclude: []Rule{{Database: "x"}}}).HasRules() || !(Filter{Include: []Rule{{Database: "x"}}}).HasRules() {
		t.Fatal("HasRules missed a rule")
	}
}

func TestMaySelectDatabase(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Filter
		want []string // of the databases below
	}{
		{"no rules", Filter{}, []string{"sales", "sales_archive", "hr"}},
		{"include one collection", Filter{Include: []Rule{{Database: "sales", Collections: []string{"orders"}}}}, []string{"sales"}},
		{"include by regex", Filter{Include: []Rule{{DatabaseRegex: rx("^sales", "")}}}, []string{"sales", "sales_archive"}},
		{"exclude a whole database", Filter{Exclude: []Rule{{DatabaseRegex: rx("archive", "")}}}, []string{"sales", "hr"}},
		{"excluding some collections keeps the database",
			Filter{Exclude: []Rule{{Database: "hr", CollectionsRegex: rx(".", "")}}}, []string{"sales", "sales_archive", "hr"}},
		{"system databases stay out even when included",
			Filter{Include: []Rule{{Database: "admin"}, {Database: DefaultMetadataDB}, {Database: "hr"}}}, []string{"hr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, db := range []string{"sales", "sales_archive", "hr", "admin", "local", "config", DefaultMetadataDB} {
				if tc.f.MaySelectDatabase(db) {
					got = append(got, db)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSelectsWholeDatabase(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Filter
		want []string // of the databases below
	}{
		{"no rules", Filter{}, []string{"sales", "sales_archive", "hr"}},
		{"include whole databases", Filter{Include: []Rule{{DatabaseRegex: rx("^sales", "")}}}, []string{"sales", "sales_archive"}},
		{"include some collections only",
			Filter{Include: []Rule{{Database: "sales", Collections: []string{"orders"}}, {Database: "hr"}}}, []string{"hr"}},
		{"include with collectionsRegex is not whole, even if it matches all",
			Filter{Include: []Rule{{Database: "sales", CollectionsRegex: rx("", "")}}}, nil},
		{"excluding one collection breaks wholeness",
			Filter{Exclude: []Rule{{Database: "sales", Collections: []string{"orders"}}}}, []string{"sales_archive", "hr"}},
		{"exclude a whole database", Filter{Exclude: []Rule{{Database: "hr"}}}, []string{"sales", "sales_archive"}},
		{"metadata database never", Filter{Include: []Rule{{Database: DefaultMetadataDB}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, db := range []string{"sales", "sales_archive", "hr", "admin", DefaultMetadataDB} {
				if tc.f.SelectsWholeDatabase(db) {
					got = append(got, db)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestValidateRules(t *testing.T) {
	ok := Rule{Database: "sales"}
	for _, tc := range []struct {
		rule Rule
		want string // "" for valid
	}{
		{Rule{Database: "sales", Collections: []string{"a", "a", "b.c"}}, ""},
		{Rule{DatabaseRegex: rx("^sales_(eu|us)$", "imsxu"), CollectionsRegex: rx(`^\d+`, "")}, ""},
		{Rule{Database: "sales", DatabaseRegex: rx("s", "")}, `includeNamespaces[1]: give either "database" or "databaseRegex", not both`},
		{Rule{}, `includeNamespaces[1]: give a non-empty "database" name or a "databaseRegex"`},
		{Rule{Collections: []string{"orders"}}, `includeNamespaces[1]: give a non-empty "database" name or a "databaseRegex"`},
		{Rule{Database: "sales.eu"}, `includeNamespaces[1]: database name "sales.eu" holds '.'`},
		{Rule{Database: "a/b"}, `holds '/'`},
		{Rule{Database: `a\b`}, `holds '\\'`},
		{Rule{Database: "a b"}, `holds ' '`},
		{Rule{Database: `a"b`}, `holds '"'`},
		{Rule{Database: "a$b"}, `holds '$'`},
		{Rule{Database: "a\x00b"}, `holds '\x00'`},
		{Rule{Database: "sales", Collections: []string{"a", ""}}, `includeNamespaces[1]: collections[1] is empty`},
		{Rule{Database: "sales", Collections: []string{"system.views"}}, `includeNamespaces[1]: collection "system.views" is a system collection`},
		{Rule{DatabaseRegex: rx("", "i")}, `includeNamespaces[1]: databaseRegex has an empty pattern; give a pattern, or use "database"`},
		{Rule{Database: "sales", CollectionsRegex: rx("", "")}, `includeNamespaces[1]: collectionsRegex has an empty pattern`},
		{Rule{Database: "sales", CollectionsRegex: rx("a", "ig")}, `includeNamespaces[1]: collectionsRegex option 'g' is not supported`},
		{Rule{DatabaseRegex: rx("(?<!tmp)_db", "")}, "includeNamespaces[1]: databaseRegex pattern \"(?<!tmp)_db\" does not compile (lookaround `(?<!` is not supported)"},
		{Rule{Database: "sales", CollectionsRegex: rx(`(a)\1`, "")}, "collectionsRegex pattern \"(a)\\\\1\" does not compile (invalid escape sequence: `\\1`)"},
		{Rule{Database: "sales", CollectionsRegex: rx("a(?=b)", "")}, "collectionsRegex pattern \"a(?=b)\" does not compile (lookaround `(?=` is not supported)"},
		{Rule{Database: "sales", CollectionsRegex: rx("(a", "")}, "collectionsRegex pattern \"(a\" does not compile (missing closing ): `(a`)"},
	} {
		err := ValidateRules("includeNamespaces", []Rule{ok, tc.rule})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.rule, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "includeNamespaces[1]: ")):
			t.Errorf("%+v: error %v, want one starting includeNamespaces[1] and containing %s", tc.rule, err, tc.want)
		}
	}
	err := ValidateRules("excludeNamespaces", []Rule{{Database: "$bad"}})
	if err == nil || !strings.HasPrefix(err.Error(), "excludeNamespaces[0]: ") {
		t.Fatalf("error %v does not name excludeNamespaces[0]", err)
	}
	if err := ValidateRules("excludeNamespaces", nil); err != nil {
		t.Fatal(err)
	}
}

func TestStripExtended(t *testing.T) {
	for in, want := range map[string]string{
		"^ a b c $":            "^abc$",
		"a # comment\n b":      "ab",
		`a\ b\#c`:              `a\ b\#c`,     // escaped space and '#' stay, as literals
		"[ #]x":                "[ #]x",       // space and '#' are literal inside a class
		"[] ]x [^] ] y":        "[] ]x[^] ]y", // a leading ']' does not end the class
		"[[:alpha:] ] z":       "[[:alpha:] ]z",
		`\Q a # b \E c`:        `\Q a # b \Ec`,
		`\\Q a`:                `\\Qa`, // an escaped backslash does not start a quote
		"é ü":                  "éü",
		"unterminated [ class": "unterminated[ class",
	} {
		if got := stripExtended(in); got != want {
			t.Errorf("stripExtended(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRulesRoundTripJSON(t *testing.T) {
	text := `[{"database":"sales","collectionsRegex":{"pattern":"^2024","options":"i"}},` +
		`{"databaseRegex":{"pattern":"^tmp_"},"collections":["a","b"]},` +
		`{"database":"hr","collections":["people"]}]`
	want := []Rule{
		{Database: "sales", CollectionsRegex: rx("^2024", "i")},
		{DatabaseRegex: rx("^tmp_", ""), Collections: []string{"a", "b"}},
		{Database: "hr", Collections: []string{"people"}},
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	var rules []Rule
	if err := dec.Decode(&rules); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rules, want) {
		t.Fatalf("decoded %+v, want %+v", rules, want)
	}
	if err := ValidateRules("includeNamespaces", rules); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(rules)
	if err != nil || !bytes.Equal(out, []byte(text)) {
		t.Fatalf("encoded %s, %v\nwant    %s", out, err, text)
	}

	// The docs of mongosync 1.6 once spelled the field "collectionRegex"; refuse it rather than
	// silently syncing the whole database.
	dec = json.NewDecoder(strings.NewReader(`[{"database":"sales","collectionRegex":{"pattern":"x"}}]`))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rules); err == nil {
		t.Fatal("decoded a rule with the unknown field collectionRegex")
	}
}

func TestRulesRoundTripBSON(t *testing.T) {
	type stored struct {
		Include []Rule `bson:"include"`
	}
	in := stored{Include: []Rule{
		{Database: "sales", Collections: []string{"EMEA", "APAC"}, CollectionsRegex: rx("^acc", "i")},
		{DatabaseRegex: rx("^tmp_", "")},
	}}
	// Matching first must not change what is stored.
	(Filter{Include: in.Include}).Selected(Namespace{DB: "sales", Coll: "accounts"})

	raw, err := bson.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"include.0.database":                 `"sales"`,
		"include.0.collections.1":            `"APAC"`,
		"include.0.collectionsRegex.pattern": `"^acc"`,
		"include.0.collectionsRegex.options": `"i"`,
		"include.1.databaseRegex.pattern":    `"^tmp_"`,
	} {
		if got := bson.Raw(raw).Lookup(strings.Split(key, ".")...).String(); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	for _, absent := range []string{"include.0.databaseRegex", "include.1.database", "include.1.collections", "include.1.databaseRegex.options"} {
		if _, err := bson.Raw(raw).LookupErr(strings.Split(absent, ".")...); err == nil {
			t.Errorf("%s is stored, want it left out", absent)
		}
	}
	var out stored
	if err := bson.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip gave %+v, want %+v", out, in)
	}
}

// Appliers match namespaces from many goroutines; the lazily compiled regexes must be safe for that
// (run with -race).
func TestSelectedConcurrently(t *testing.T) {
	f := Filter{Include: []Rule{{DatabaseRegex: rx("^conc_sales", "i"), CollectionsRegex: rx("^conc_orders", "")}}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if !f.Selected(Namespace{DB: "CONC_SALES", Coll: "conc_orders"}) || f.Selected(Namespace{DB: "sales", Coll: "conc_orders"}) {
					t.Error("wrong answer under concurrency")
					return
				}
			}
		})
	}
	wg.Wait()
}
