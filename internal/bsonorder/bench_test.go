package bsonorder

import (
	"testing"

	"go.mongodb.org/mongo-driver/bson/primitive"
)

func BenchmarkCompare(b *testing.B) {
	for _, bc := range []struct {
		name string
		x, y any
	}{
		{"ObjectId", primitive.ObjectID{0: 0x65, 11: 1}, primitive.ObjectID{0: 0x65, 11: 2}},
		{"Int64", int64(1 << 40), int64(1<<40 + 1)},
		{"Int64VsDouble", int64(1<<53 + 1), float64(1 << 53)},
		{"String", "customer-000123456", "customer-000123457"},
		{"Binary", primitive.Binary{Subtype: 4, Data: make([]byte, 16)}, primitive.Binary{Subtype: 4, Data: make([]byte, 16)}},
		{"DecimalVsInt64", dec(b, "12345.5"), int64(12345)},
		{"DecimalVsDouble", dec(b, "12345.5"), 12345.25},
	} {
		x, y := val(b, bc.x), val(b, bc.y)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Compare(x, y)
			}
		})
	}
}
