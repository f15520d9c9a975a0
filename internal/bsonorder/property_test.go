package bsonorder

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// gen draws BSON values of every type from small domains, so that equal values (including equal
// numbers of different types) are common and the equality paths get exercised.
type gen struct {
	tb  testing.TB
	rng *rand.Rand
}

func pick[T any](g gen, xs ...T) T { return xs[g.rng.IntN(len(xs))] }

var (
	genDoubles = []float64{
		math.NaN(), math.Inf(-1), math.Inf(1), 0, math.Copysign(0, -1), 0.1, -0.1, 1, 2.5, -2.5, 5,
		1 << 53, 1<<53 + 2, 1 << 63, -(1 << 63), 5e-324, math.MaxFloat64, -math.MaxFloat64, 1e-300,
	}
	genInt64s = []int64{
		0, 1, -1, 5, 1 << 53, 1<<53 + 1, -(1<<53 + 1), math.MaxInt64, math.MinInt64, 1 << 62,
	}
	genDecimals = []string{
		"NaN", "-Infinity", "Infinity", "0", "-0", "0E-6176", "5", "5.00", "0.1", "-0.1", "2.5", "-2.5",
		"9007199254740993", "9007199254740992", "9223372036854775808", "-9223372036854775808",
		"1E+6144", "-1E+6144", "7E-6176", "1E-400", "1E+400", "9999999999999999999999999999999999",
		"4.9406564584124654E-324", "1.797693134862315708145274237317044E+308",
	}
	genStrings = []string{"", "a", "A", "ab", "a\x00", "é", "str", "Str", "\uffff", "\U00010000"}
	genKeys    = []string{"a", "b", "ab", "_id"}
)

func (g gen) value(depth int) any {
	switch g.rng.IntN(22) {
	case 0:
		return primitive.MinKey{}
	case 1:
		return primitive.MaxKey{}
	case 2:
		return pick(g, any(primitive.Null{}), any(primitive.Undefined{}))
	case 3:
		return int32(g.rng.IntN(11) - 5)
	case 4:
		if g.rng.IntN(2) == 0 {
			return int64(g.rng.IntN(11) - 5)
		}
		return pick(g, genInt64s...)
	case 5:
		switch g.rng.IntN(3) {
		case 0:
			return float64(g.rng.IntN(11)-5) / 2
		case 1:
			return math.Float64frombits(g.rng.Uint64()) // anything, NaN payloads included
		}
		return pick(g, genDoubles...)
	case 6:
		if g.rng.IntN(3) == 0 {
			// Random coefficient and exponent, covering the whole exponent range.
			return primitive.NewDecimal128(uint64(g.rng.IntN(12288))<<49|g.rng.Uint64()&(1<<20-1), g.rng.Uint64())
		}
		return dec(g.tb, pick(g, genDecimals...))
	case 7:
		return pick(g, genStrings...)
	case 8:
		return primitive.Symbol(pick(g, genStrings...))
	case 9:
		if depth > 2 {
			return bson.D{}
		}
		return g.doc(depth + 1)
	case 10:
		if depth > 2 {
			return bson.A{}
		}
		a := bson.A{}
		for range g.rng.IntN(3) {
			a = append(a, g.value(depth+1))
		}
		return a
	case 11:
		data := make([]byte, g.rng.IntN(3))
		for i := range data {
			data[i] = pick(g, byte(0), 1, 'z')
		}
		return primitive.Binary{Subtype: pick(g, byte(0), 2, 4, 5, 0x80), Data: data}
	case 12:
		return oid(byte(g.rng.IntN(4)))
	case 13:
		return g.rng.IntN(2) == 0
	case 14:
		return primitive.DateTime(pick(g, int64(-1), 0, 1, math.MaxInt64, math.MinInt64))
	case 15:
		return primitive.Timestamp{T: pick(g, uint32(0), 1, 1<<31, math.MaxUint32), I: pick(g, uint32(0), 1, math.MaxUint32)}
	case 16:
		return primitive.Regex{Pattern: pick(g, "a", "ab", "b"), Options: pick(g, "", "i", "im")}
	case 17:
		return primitive.DBPointer{DB: pick(g, "a", "b", "ab"), Pointer: oid(byte(g.rng.IntN(3)))}
	case 18:
		return primitive.JavaScript(pick(g, genStrings...))
	case 19:
		scope := bson.D{}
		if depth <= 2 {
			scope = g.doc(depth + 1)
		}
		return primitive.CodeWithScope{Code: primitive.JavaScript(pick(g, "a", "b")), Scope: scope}
	case 20:
		return int32(pick(g, math.MinInt32, math.MaxInt32))
	}
	return pick(g, genDoubles...)
}

func (g gen) doc(depth int) bson.D {
	d := bson.D{}
	for range g.rng.IntN(3) {
		d = append(d, bson.E{Key: pick(g, genKeys...), Value: g.value(depth)})
	}
	return d
}

func (g gen) values(n int) []bson.RawValue {
	out := make([]bson.RawValue, n)
	for i := range out {
		out[i] = val(g.tb, g.value(0))
	}
	return out
}

// checkTotalOrder sorts vals and checks that Compare is a total preorder on them: reflexive,
// antisymmetric, and consistent with the sorted sequence, whose equal values must form contiguous
// blocks (so equality and order are both transitive).
func checkTotalOrder(t *testing.T, vals []bson.RawValue) {
	t.Helper()
	s := slices.Clone(vals)
	slices.SortStableFunc(s, Compare)
	block := make([]int, len(s))
	for i := 1; i < len(s); i++ {
		block[i] = block[i-1]
		if Compare(s[i-1], s[i]) != 0 {
			block[i]++
		}
	}
	failures := 0
	for i := range s {
		if c := Compare(s[i], s[i]); c != 0 {
			t.Errorf("not reflexive: Compare(%v, itself) = %d", s[i], c)
			failures++
		}
		for j := i + 1; j < len(s) && failures < 10; j++ {
			c, r := Compare(s[i], s[j]), Compare(s[j], s[i])
			if c != -r {
				t.Errorf("not antisymmetric: Compare(%v, %v) = %d but reversed %d", s[i], s[j], c, r)
				failures++
			}
			want := -1
			if block[i] == block[j] {
				want = 0
			}
			if c != want {
				t.Errorf("not transitive: sorted %v before %v but Compare = %d (want %d)", s[i], s[j], c, want)
				failures++
			}
		}
	}
}

func TestPropertiesRandomValues(t *testing.T) {
	g := gen{tb: t, rng: rand.New(rand.NewPCG(20240601, 7))}
	checkTotalOrder(t, g.values(2500))
}

// TestPropertiesSortedTriples samples triples directly: after ordering each triple, a<=b and
// b<=c must give a<=c, and a==b==c must hold whenever a==c.
func TestPropertiesSortedTriples(t *testing.T) {
	g := gen{tb: t, rng: rand.New(rand.NewPCG(3, 14))}
	pool := g.values(3000)
	for range 100000 {
		x := []bson.RawValue{pick(g, pool...), pick(g, pool...), pick(g, pool...)}
		slices.SortFunc(x, Compare)
		ab, bc, ac := Compare(x[0], x[1]), Compare(x[1], x[2]), Compare(x[0], x[2])
		if ab > 0 || bc > 0 || ac > 0 || (ac == 0 && (ab != 0 || bc != 0)) {
			t.Fatalf("intransitive triple %v, %v, %v: %d %d %d", x[0], x[1], x[2], ab, bc, ac)
		}
	}
}

// TestPropertiesStableSort sorts shuffled copies: equal values keep their input order, and every
// shuffle sorts into the same sequence up to equality.
func TestPropertiesStableSort(t *testing.T) {
	g := gen{tb: t, rng: rand.New(rand.NewPCG(9, 9))}
	type tagged struct {
		v   bson.RawValue
		pos int
	}
	vals := g.values(2000)
	var first []tagged
	for round := range 5 {
		in := make([]tagged, len(vals))
		for i, v := range vals {
			in[i] = tagged{v, i}
		}
		g.rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		for i := range in {
			in[i].pos = i
		}
		slices.SortStableFunc(in, func(a, b tagged) int { return Compare(a.v, b.v) })
		for i := 1; i < len(in); i++ {
			if Compare(in[i-1].v, in[i].v) == 0 && in[i-1].pos > in[i].pos {
				t.Fatalf("round %d: equal values %v and %v swapped", round, in[i-1].v, in[i].v)
			}
		}
		if first == nil {
			first = in
			continue
		}
		for i := range in {
			if Compare(in[i].v, first[i].v) != 0 {
				t.Fatalf("round %d: position %d sorted to %v, first round had %v", round, i, in[i].v, first[i].v)
			}
		}
	}
}

// TestNumbersMatchExactArithmetic checks every numeric comparison against big.Rat arithmetic,
// an oracle that shares no code with the fast paths.
func TestNumbersMatchExactArithmetic(t *testing.T) {
	g := gen{tb: t, rng: rand.New(rand.NewPCG(42, 42))}
	var nums []any
	for len(nums) < 400 {
		switch x := g.value(0).(type) {
		case int32, int64, float64, primitive.Decimal128:
			nums = append(nums, x)
		}
	}
	for _, x := range genDoubles {
		nums = append(nums, x)
	}
	for _, x := range genInt64s {
		nums = append(nums, x)
	}
	for _, s := range genDecimals {
		nums = append(nums, dec(t, s))
	}
	for _, x := range nums {
		for _, y := range nums {
			want := exactCompare(t, x, y)
			if got := Compare(val(t, x), val(t, y)); got != want {
				t.Fatalf("Compare(%v (%T), %v (%T)) = %d, exact arithmetic says %d", x, x, y, y, got, want)
			}
		}
	}
}

// exactCompare orders numbers by the documented rules: NaN < -Inf < finite < +Inf, finite ones by
// exact rational value.
func exactCompare(tb testing.TB, x, y any) int {
	cx, rx := exactValue(tb, x)
	cy, ry := exactValue(tb, y)
	if cx != cy {
		if cx < cy {
			return -1
		}
		return 1
	}
	if cx != 2 {
		return 0
	}
	return rx.Cmp(ry)
}

// exactValue returns a class (0 NaN, 1 -Inf, 2 finite, 3 +Inf) and, if finite, the exact value.
func exactValue(tb testing.TB, x any) (int, *big.Rat) {
	switch v := x.(type) {
	case int32:
		return 2, new(big.Rat).SetInt64(int64(v))
	case int64:
		return 2, new(big.Rat).SetInt64(v)
	case float64:
		switch {
		case math.IsNaN(v):
			return 0, nil
		case math.IsInf(v, -1):
			return 1, nil
		case math.IsInf(v, 1):
			return 3, nil
		}
		return 2, new(big.Rat).SetFloat64(v)
	case primitive.Decimal128:
		if v.IsNaN() {
			return 0, nil
		}
		switch v.IsInf() {
		case -1:
			return 1, nil
		case 1:
			return 3, nil
		}
		coef, exp, err := v.BigInt()
		if err != nil {
			tb.Fatalf("decimal %v: %v", v, err)
		}
		if coef.CmpAbs(new(big.Int).Exp(big.NewInt(10), big.NewInt(34), nil)) >= 0 {
			coef.SetInt64(0) // non-canonical coefficient: the value is zero
		}
		r := new(big.Rat).SetInt(coef)
		scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil))
		if exp >= 0 {
			return 2, r.Mul(r, scale)
		}
		return 2, r.Quo(r, scale)
	}
	tb.Fatalf("not a number: %T", x)
	return 0, nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
