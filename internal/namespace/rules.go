package namespace

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
)

// Rule is one entry of mongosync's includeNamespaces or excludeNamespaces start parameters, kept in
// mongosync's JSON shape so a start request decodes into it and it can be stored as is.
//
// A rule names its databases with exactly one of Database and DatabaseRegex. Collections and
// CollectionsRegex narrow it to some collections of those databases: a collection matches when it is
// in Collections or matches CollectionsRegex. A rule with neither (an empty Collections list counts as
// none, since it is not stored) matches every collection of its databases.
type Rule struct {
	Database         string   `json:"database,omitempty" bson:"database,omitempty"`
	DatabaseRegex    *Regex   `json:"databaseRegex,omitempty" bson:"databaseRegex,omitempty"`
	Collections      []string `json:"collections,omitempty" bson:"collections,omitempty"`
	CollectionsRegex *Regex   `json:"collectionsRegex,omitempty" bson:"collectionsRegex,omitempty"`
}

// Regex is a MongoDB regular expression: a pattern and $regex option letters in any order.
//
// mongosync hands filter regexes to the $regex operator, so like $regex they match anywhere in a name
// unless the pattern is anchored: "2024" matches "sales_2024_q1", "^2024$" only "2024".
//
// fleetsync compiles them with Go's RE2, which has no lookaround or backreferences; ValidateRules
// refuses such patterns up front instead of letting them silently never match.
type Regex struct {
	Pattern string `json:"pattern" bson:"pattern"`
	Options string `json:"options,omitempty" bson:"options,omitempty"`
}

// regexOptions are the $regex option letters fleetsync accepts. "i", "m" and "s" are Go flags too. "x"
// (extended) has no Go flag: fleetsync strips the pattern's free-spacing whitespace and #-comments
// itself. "u" asks PCRE for UTF-8, which Go always uses.
const regexOptions = "imsxu"

// compiledRegex is a compiled Regex, or why it did not compile.
type compiledRegex struct {
	re  *regexp.Regexp
	err error
}

// compiledRegexes caches compilations by Regex value, so Rule and Regex stay plain values that
// encoding/json and bson round-trip unchanged, and matching in the hot path of change-event
// application compiles each pattern once. A sync has few distinct patterns, so it never needs evicting.
var compiledRegexes sync.Map // Regex -> *compiledRegex

// compile returns the Go form of r, compiling it on first use.
func (r Regex) compile() (*regexp.Regexp, error) {
	if c, ok := compiledRegexes.Load(r); ok {
		return c.(*compiledRegex).re, c.(*compiledRegex).err
	}
	var c compiledRegex
	c.re, c.err = r.compileUncached()
	actual, _ := compiledRegexes.LoadOrStore(r, &c)
	return actual.(*compiledRegex).re, actual.(*compiledRegex).err
}

func (r Regex) compileUncached() (*regexp.Regexp, error) {
	for _, o := range r.Options {
		if !strings.ContainsRune(regexOptions, o) {
			return nil, fmt.Errorf("option %q is not supported; use only the letters %s", o, regexOptions)
		}
	}
	pattern := r.Pattern
	if strings.Contains(r.Options, "x") {
		pattern = stripExtended(pattern)
	}
	var flags string
	for _, f := range "ims" { // the options Go shares with PCRE, under the same letters
		if strings.ContainsRune(r.Options, f) {
			flags += string(f)
		}
	}
	if flags != "" {
		pattern = "(?" + flags + ")" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		reason := err.Error()
		var serr *syntax.Error
		if errors.As(err, &serr) {
			reason = fmt.Sprintf("%s: `%s`", serr.Code, serr.Expr)
		}
		// Go reads "(?<!" as a bad named group; say what the user actually wrote.
		for _, look := range []string{"(?=", "(?!", "(?<=", "(?<!"} {
			if strings.Contains(r.Pattern, look) {
				reason = fmt.Sprintf("lookaround `%s` is not supported", look)
			}
		}
		return nil, fmt.Errorf("pattern %q does not compile (%s); rewrite it in RE2 syntax, which has no lookaround or backreferences", r.Pattern, reason)
	}
	return re, nil
}

// matches reports whether r matches s anywhere. A pattern that does not compile matches nothing;
// ValidateRules keeps such patterns out of a sync.
func (r *Regex) matches(s string) bool {
	re, err := r.compile()
	return err == nil && re.MatchString(s)
}

// stripExtended removes what PCRE's extended ("x") mode ignores: whitespace and #-comments outside
// character classes and \Q...\E quotes, unless escaped. Escaped characters stay escaped, which RE2
// reads as the literal character. It works on bytes: every character it looks at is ASCII, and UTF-8
// never reuses ASCII bytes inside other characters.
func stripExtended(pattern string) string {
	var out strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case strings.HasPrefix(pattern[i:], `\Q`):
			end := len(pattern)
			if j := strings.Index(pattern[i+2:], `\E`); j >= 0 {
				end = i + 2 + j + 2
			}
			out.WriteString(pattern[i:end])
			i = end - 1
		case c == '\\':
			end := min(i+2, len(pattern))
			out.WriteString(pattern[i:end])
			i = end - 1
		case c == '[':
			end := classEnd(pattern, i)
			out.WriteString(pattern[i:end])
			i = end - 1
		case c == '#':
			for i+1 < len(pattern) && pattern[i+1] != '\n' {
				i++
			}
		case strings.IndexByte(" \t\n\v\f\r", c) >= 0:
		default:
			out.WriteByte(c)
		}
	}
	return out.String()
}

// classEnd returns the index just past the character class that starts at pattern[start] == '['.
// Whitespace and '#' inside a class are literal, so stripExtended copies classes whole.
func classEnd(pattern string, start int) int {
	i := start + 1
	if i < len(pattern) && pattern[i] == '^' {
		i++
	}
	if i < len(pattern) && pattern[i] == ']' { // a leading ']' is a literal, not the end
		i++
	}
	for i < len(pattern) && pattern[i] != ']' {
		switch {
		case pattern[i] == '\\':
			i += 2
		case strings.HasPrefix(pattern[i:], "[:"): // [:alpha:] holds a ']' of its own
			if j := strings.Index(pattern[i:], ":]"); j >= 0 {
				i += j + 2
			} else {
				i++
			}
		default:
			i++
		}
	}
	return min(i+1, len(pattern))
}

// badDatabaseChars are the characters MongoDB refuses in database names on any platform.
const badDatabaseChars = "./\\ \"$\x00"

// ValidateRules checks the rules given as the start parameter which ("includeNamespaces" or
// "excludeNamespaces") and returns an error for the first problem, naming the entry and the fix.
func ValidateRules(which string, rules []Rule) error {
	for i, r := range rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("%s[%d]: %w", which, i, err)
		}
	}
	return nil
}

func (r Rule) validate() error {
	switch {
	case r.Database != "" && r.DatabaseRegex != nil:
		return errors.New(`give either "database" or "databaseRegex", not both`)
	case r.Database == "" && r.DatabaseRegex == nil:
		return errors.New(`give a non-empty "database" name or a "databaseRegex"`)
	}
	if i := strings.IndexAny(r.Database, badDatabaseChars); i >= 0 {
		return fmt.Errorf("database name %q holds %q, which MongoDB does not allow in database names; fix the name",
			r.Database, r.Database[i])
	}
	if err := r.DatabaseRegex.validate("databaseRegex", `use "database" for a single database`); err != nil {
		return err
	}
	for j, c := range r.Collections {
		switch {
		case c == "":
			return fmt.Errorf("collections[%d] is empty; give a collection name or remove the empty string", j)
		case IsSystemCollection(c):
			return fmt.Errorf("collection %q is a system collection, which fleetsync never syncs; remove it from the filter", c)
		}
	}
	return r.CollectionsRegex.validate("collectionsRegex", "leave collectionsRegex out to match every collection")
}

// validate checks a regex given as field; orElse tells the user what to write instead of an empty pattern.
func (r *Regex) validate(field, orElse string) error {
	if r == nil {
		return nil
	}
	if r.Pattern == "" {
		return fmt.Errorf("%s has an empty pattern; give a pattern, or %s", field, orElse)
	}
	if _, err := r.compile(); err != nil {
		return fmt.Errorf("%s %w", field, err)
	}
	return nil
}

func (r Rule) matchesDatabase(db string) bool {
	if r.DatabaseRegex != nil {
		return r.DatabaseRegex.matches(db)
	}
	return r.Database == db
}

// wholeDatabase reports whether r matches every collection of the databases it names.
func (r Rule) wholeDatabase() bool {
	return len(r.Collections) == 0 && r.CollectionsRegex == nil
}

func (r Rule) matches(ns Namespace) bool {
	if !r.matchesDatabase(ns.DB) {
		return false
	}
	return r.wholeDatabase() || slices.Contains(r.Collections, ns.Coll) ||
		(r.CollectionsRegex != nil && r.CollectionsRegex.matches(ns.Coll))
}

// HasRules reports whether the sync was started with includeNamespaces or excludeNamespaces.
func (f Filter) HasRules() bool {
	return len(f.Include) > 0 || len(f.Exclude) > 0
}

// Selected reports whether the sync copies ns: a user namespace that some include rule matches (or
// there are none) and no exclude rule matches. Exclusion wins, as in mongosync.
func (f Filter) Selected(ns Namespace) bool {
	if !f.User(ns) {
		return false
	}
	if len(f.Include) > 0 && !slices.ContainsFunc(f.Include, func(r Rule) bool { return r.matches(ns) }) {
		return false
	}
	return !slices.ContainsFunc(f.Exclude, func(r Rule) bool { return r.matches(ns) })
}

// MaySelectDatabase reports whether some collection of db could be selected, so a false answer lets
// callers skip listing db. It may answer true for a database none of whose collections turn out to be
// selected (say, an include rule for one collection that an exclude rule removes again).
func (f Filter) MaySelectDatabase(db string) bool {
	if !f.UserDatabase(db) {
		return false
	}
	if len(f.Include) > 0 && !slices.ContainsFunc(f.Include, func(r Rule) bool { return r.matchesDatabase(db) }) {
		return false
	}
	return !slices.ContainsFunc(f.Exclude, func(r Rule) bool { return r.wholeDatabase() && r.matchesDatabase(db) })
}

// SelectsWholeDatabase reports whether every user collection of db, including ones created later, is
// selected. Only then may a dropDatabase on the source drop the whole destination database; otherwise
// it must drop just the selected collections, leaving the rest of the destination alone.
func (f Filter) SelectsWholeDatabase(db string) bool {
	if !f.UserDatabase(db) {
		return false
	}
	if len(f.Include) > 0 && !slices.ContainsFunc(f.Include, func(r Rule) bool { return r.wholeDatabase() && r.matchesDatabase(db) }) {
		return false
	}
	return !slices.ContainsFunc(f.Exclude, func(r Rule) bool { return r.matchesDatabase(db) })
}
