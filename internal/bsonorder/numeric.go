package bsonorder

import (
	"cmp"
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
)

// Numbers compare by exact mathematical value whatever their BSON type, as the server's
// compare_numbers.h does: int32(5) == int64(5) == 5.0 == Decimal128("5.00"). Its extra rules:
// every NaN (double or decimal) equals every other NaN and sorts below every other number, even
// -Infinity; -0 equals 0. Sorting the non-finite classes first means the finite paths below never
// see NaN or an infinity.

// numClass orders the classes of numbers; finite ones then compare by value.
type numClass int8

const (
	classNaN numClass = iota
	classNegInf
	classFinite
	classPosInf
)

// numKind says which field of number holds a finite value.
type numKind int8

const (
	kindInt numKind = iota // int32 and int64, widened to int64 (every int32 is an exact int64).
	kindDouble
	kindDecimal
)

// number is a decoded numeric value; it lives on the stack.
type number struct {
	class numClass
	kind  numKind
	i     int64
	f     float64
	d     decimal
}

// decimal is a finite Decimal128: (-1)^neg * coef * 10^exp, with coef < 10^34.
type decimal struct {
	neg  bool
	coef uint128
	exp  int
}

// Decimal128 layout (IEEE 754-2008, binary integer decimal), seen in the high 64 bits.
const (
	decSignBit        = 1 << 63
	decComboShift     = 58 // the top five combination bits pick NaN, Infinity or a number.
	decComboMask      = 0x1F
	decComboNaN       = 0x1F
	decComboInf       = 0x1E
	decLargeFormShift = 61 // 0b11 here: the coefficient has an implied 0b100 prefix.
	decExpShift       = 49 // exponent position in the ordinary form.
	decExpMask        = 1<<14 - 1
	decCoefHighMask   = 1<<49 - 1
	decExpBias        = 6176
	decMaxDigits      = 34
)

func decodeNumber(v bson.RawValue) (number, bool) {
	switch v.Type {
	case bsontype.Int32:
		if len(v.Value) < int32Size {
			return number{}, false
		}
		i := int32(binary.LittleEndian.Uint32(v.Value))
		return number{class: classFinite, kind: kindInt, i: int64(i)}, true
	case bsontype.Int64:
		u, ok := readUint64(v.Value)
		return number{class: classFinite, kind: kindInt, i: int64(u)}, ok
	case bsontype.Double:
		u, ok := readUint64(v.Value)
		f := math.Float64frombits(u)
		n := number{class: classFinite, kind: kindDouble, f: f}
		switch {
		case math.IsNaN(f):
			n.class = classNaN
		case math.IsInf(f, -1):
			n.class = classNegInf
		case math.IsInf(f, 1):
			n.class = classPosInf
		}
		return n, ok
	case bsontype.Decimal128:
		const decimalSize = 16
		if len(v.Value) < decimalSize {
			return number{}, false
		}
		lo := binary.LittleEndian.Uint64(v.Value)
		hi := binary.LittleEndian.Uint64(v.Value[int64Size:])
		return decodeDecimal(hi, lo), true
	}
	return number{}, false
}

func decodeDecimal(hi, lo uint64) number {
	neg := hi&decSignBit != 0
	switch (hi >> decComboShift) & decComboMask {
	case decComboNaN: // quiet and signalling NaN alike
		return number{class: classNaN, kind: kindDecimal}
	case decComboInf:
		if neg {
			return number{class: classNegInf, kind: kindDecimal}
		}
		return number{class: classPosInf, kind: kindDecimal}
	}
	d := decimal{neg: neg}
	if (hi>>decLargeFormShift)&3 == 3 {
		// The large form's coefficient is at least 2^113 > 10^34-1: non-canonical, so the value
		// is zero (IEEE 754-2008 3.5.2). Zero's exponent never matters, so leave it.
		return number{class: classFinite, kind: kindDecimal, d: d}
	}
	d.exp = int((hi>>decExpShift)&decExpMask) - decExpBias
	d.coef = uint128{hi: hi & decCoefHighMask, lo: lo}
	if !d.coef.less(pow10[decMaxDigits]) {
		d.coef = uint128{} // also non-canonical, also zero
	}
	return number{class: classFinite, kind: kindDecimal, d: d}
}

func compareNumbers(a, b bson.RawValue) int {
	if c, ok := compareSameTypeNumbers(a, b); ok {
		return c
	}
	na, okA := decodeNumber(a)
	nb, okB := decodeNumber(b)
	if c, bad := malformed(a, okA, b, okB); bad {
		return c
	}
	if na.class != nb.class || na.class != classFinite {
		return cmp.Compare(na.class, nb.class)
	}
	switch {
	case na.kind == kindInt && nb.kind == kindInt:
		return cmp.Compare(na.i, nb.i)
	case na.kind == kindDouble && nb.kind == kindDouble:
		return cmp.Compare(na.f, nb.f) // finite, so plain <; -0 == 0
	case na.kind == kindInt && nb.kind == kindDouble:
		return compareInt64ToDouble(na.i, nb.f)
	case na.kind == kindDouble && nb.kind == kindInt:
		return -compareInt64ToDouble(nb.i, na.f)
	case na.kind == kindDecimal && nb.kind == kindDecimal:
		return compareDecimals(na.d, nb.d)
	case na.kind == kindDecimal && nb.kind == kindInt:
		return compareDecimals(na.d, decimalFromInt64(nb.i))
	case na.kind == kindInt && nb.kind == kindDecimal:
		return compareDecimals(decimalFromInt64(na.i), nb.d)
	case na.kind == kindDecimal:
		return compareDecimalToDouble(na.d, nb.f)
	}
	return -compareDecimalToDouble(nb.d, na.f)
}

// compareSameTypeNumbers is the hot path for _ids that are all int32, all int64 or all double: it
// skips decoding into number, which halves the cost.
func compareSameTypeNumbers(a, b bson.RawValue) (int, bool) {
	if a.Type != b.Type {
		return 0, false
	}
	switch a.Type {
	case bsontype.Int32:
		if len(a.Value) >= int32Size && len(b.Value) >= int32Size {
			x, y := binary.LittleEndian.Uint32(a.Value), binary.LittleEndian.Uint32(b.Value)
			return cmp.Compare(int32(x), int32(y)), true
		}
	case bsontype.Int64:
		if x, okX := readUint64(a.Value); okX {
			if y, okY := readUint64(b.Value); okY {
				return cmp.Compare(int64(x), int64(y)), true
			}
		}
	case bsontype.Double:
		if x, okX := readUint64(a.Value); okX {
			if y, okY := readUint64(b.Value); okY {
				// cmp.Compare already has the server's rules: NaN == NaN, NaN below all, -0 == 0.
				return cmp.Compare(math.Float64frombits(x), math.Float64frombits(y)), true
			}
		}
	}
	return 0, false
}

// compareInt64ToDouble is the server's compareLongToDouble for a finite double. Converting the
// int64 to float64 would round (2^53+1 becomes 2^53), so that is only done where it is exact.
func compareInt64ToDouble(i int64, f float64) int {
	const exactLimit = 1 << 53 // every integer of at most this magnitude is an exact float64
	if i >= -exactLimit && i <= exactLimit {
		return cmp.Compare(float64(i), f)
	}
	const int64Bound = 1 << 63 // as a float64: just above MaxInt64, exactly -MinInt64
	if f >= int64Bound {
		return -1
	}
	if f < -int64Bound {
		return 1
	}
	// f now fits in an int64. Truncating its fraction cannot cross i: |i| > 2^53, and a double
	// that large has no fraction.
	return cmp.Compare(i, int64(f))
}

func decimalFromInt64(i int64) decimal {
	mag := uint64(i)
	if i < 0 {
		mag = -mag // two's complement magnitude; right for MinInt64 too
	}
	return decimal{neg: i < 0, coef: uint128{lo: mag}}
}

func (d decimal) sign() int {
	switch {
	case d.coef.isZero():
		return 0 // -0 is 0
	case d.neg:
		return -1
	}
	return 1
}

// compareDecimals compares finite decimals exactly without allocating.
func compareDecimals(x, y decimal) int {
	sx, sy := x.sign(), y.sign()
	if sx != sy || sx == 0 {
		return cmp.Compare(sx, sy)
	}
	return sx * compareDecimalMagnitudes(x, y)
}

// compareDecimalMagnitudes compares |x| and |y|, both non-zero. A coefficient of n digits with
// exponent e lies in [10^(n+e-1), 10^(n+e)), so different n+e decide at once; equal n+e means the
// coefficients, padded to the same digit count (at most 34, which fits 128 bits), decide.
func compareDecimalMagnitudes(x, y decimal) int {
	dx, dy := x.coef.digits(), y.coef.digits()
	if c := cmp.Compare(dx+x.exp, dy+y.exp); c != 0 {
		return c
	}
	cx, cy := x.coef, y.coef
	if dx < dy {
		cx = cx.mul(pow10[dy-dx])
	} else {
		cy = cy.mul(pow10[dx-dy])
	}
	return cx.compare(cy)
}

// compareDecimalToDouble compares a finite decimal and a finite double exactly. Neither type holds
// the other's values, so the magnitudes are compared as integers with math/big: c*10^e10 against
// m*2^e2, each negative exponent moved to the other side. It allocates, but decimal _ids are rare.
func compareDecimalToDouble(d decimal, f float64) int {
	sd, sf := d.sign(), 0
	switch {
	case f < 0:
		sf = -1
	case f > 0:
		sf = 1
	}
	if sd != sf || sd == 0 {
		return cmp.Compare(sd, sf)
	}
	mant, exp2 := float64Parts(math.Abs(f))
	left := d.coef.big()
	right := new(big.Int).SetUint64(mant)
	if exp2 >= 0 {
		right.Lsh(right, uint(exp2))
	} else {
		left.Lsh(left, uint(-exp2))
	}
	ten := big.NewInt(10)
	if d.exp >= 0 {
		left.Mul(left, new(big.Int).Exp(ten, big.NewInt(int64(d.exp)), nil))
	} else {
		right.Mul(right, new(big.Int).Exp(ten, big.NewInt(int64(-d.exp)), nil))
	}
	return sd * left.Cmp(right)
}

// float64Parts splits a finite, non-negative f into mant*2^exp exactly.
func float64Parts(f float64) (mant uint64, exp int) {
	const (
		mantBits = 52
		expMask  = 1<<11 - 1
		expBias  = 1023
	)
	u := math.Float64bits(f)
	mant = u & (1<<mantBits - 1)
	e := int(u>>mantBits) & expMask
	if e == 0 {
		return mant, 1 - expBias - mantBits // subnormal: no implicit leading 1
	}
	return mant | 1<<mantBits, e - expBias - mantBits
}

// uint128 holds a decimal coefficient; only the operations needed here.
type uint128 struct{ hi, lo uint64 }

// pow10[i] = 10^i for i <= 34: 10^34 bounds canonical coefficients and every padding factor.
var pow10 = func() (p [decMaxDigits + 1]uint128) {
	p[0] = uint128{lo: 1}
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1].mul(uint128{lo: 10})
	}
	return p
}()

func (x uint128) isZero() bool { return x.hi == 0 && x.lo == 0 }

func (x uint128) compare(y uint128) int {
	if c := cmp.Compare(x.hi, y.hi); c != 0 {
		return c
	}
	return cmp.Compare(x.lo, y.lo)
}

func (x uint128) less(y uint128) bool { return x.compare(y) < 0 }

// mul returns x*y mod 2^128; callers only multiply when the product fits.
func (x uint128) mul(y uint128) uint128 {
	hi, lo := bits.Mul64(x.lo, y.lo)
	hi += x.hi*y.lo + x.lo*y.hi
	return uint128{hi: hi, lo: lo}
}

// digits returns the number of decimal digits of x, which must be below 10^34; zero has one.
func (x uint128) digits() int {
	n := 1
	for n < decMaxDigits && !x.less(pow10[n]) {
		n++
	}
	return n
}

func (x uint128) big() *big.Int {
	b := new(big.Int).SetUint64(x.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(x.lo))
}
