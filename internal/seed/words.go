package seed

// Vocabulary for names, places and free text. Non-ASCII entries are mixed in on purpose: accented Latin
// (2-byte UTF-8), CJK (3-byte) and emoji (4-byte) all appear, so byte lengths differ from character
// counts and any code that truncates or re-encodes strings shows up as a mismatch.

// name pairs a display form with an ASCII slug for e-mail addresses.
type name struct{ text, ascii string }

var firstNames = []name{
	{"Anna", "anna"}, {"Ben", "ben"}, {"Chloé", "chloe"}, {"David", "david"}, {"Émile", "emile"},
	{"Fatima", "fatima"}, {"Günther", "guenther"}, {"Hana", "hana"}, {"Ivan", "ivan"}, {"Jürgen", "juergen"},
	{"Katarzyna", "katarzyna"}, {"Li", "li"}, {"Mia", "mia"}, {"Noah", "noah"}, {"Olivia", "olivia"},
	{"Søren", "soeren"}, {"Zoë", "zoe"}, {"Wei", "wei"}, {"Yuki", "yuki"}, {"José", "jose"},
	{"Ngozi", "ngozi"}, {"Aarav", "aarav"}, {"Ólafur", "olafur"}, {"芳", "fang"}, {"María José", "mariajose"},
}

var lastNames = []name{
	{"Smith", "smith"}, {"Müller", "mueller"}, {"García", "garcia"}, {"Núñez", "nunez"}, {"Kowalski", "kowalski"},
	{"O'Brien", "obrien"}, {"Dubois", "dubois"}, {"Rossi", "rossi"}, {"Nakamura", "nakamura"}, {"王", "wang"},
	{"李", "li"}, {"张", "zhang"}, {"Johansson", "johansson"}, {"Łukasiewicz", "lukasiewicz"},
	{"Østergaard", "oestergaard"}, {"Nguyễn", "nguyen"}, {"Papadopoulos", "papadopoulos"}, {"Öztürk", "ozturk"},
	{"van der Berg", "vanderberg"}, {"Schröder-Lindqvist", "schroederlindqvist"},
}

var emailDomains = []string{
	"example.com", "mail.example.org", "example.de", "example.co.jp", "xn--exmple-cua.test", "corp.example.net",
}

// city carries real coordinates so geo fields look like real GeoJSON points.
type city struct {
	name, country string
	lat, lng      float64
}

var cities = []city{
	{"Berlin", "DE", 52.52, 13.405}, {"München", "DE", 48.137, 11.575}, {"Zürich", "CH", 47.3769, 8.5417},
	{"São Paulo", "BR", -23.55, -46.633}, {"東京", "JP", 35.6762, 139.6503}, {"New York", "US", 40.7128, -74.006},
	{"Kraków", "PL", 50.0647, 19.945}, {"Reykjavík", "IS", 64.1466, -21.9426}, {"Montréal", "CA", 45.5017, -73.5673},
	{"上海", "CN", 31.2304, 121.4737}, {"Cape Town", "ZA", -33.9249, 18.4241}, {"Sydney", "AU", -33.8688, 151.2093},
	{"Lyon", "FR", 45.764, 4.8357}, {"İstanbul", "TR", 41.0082, 28.9784},
}

var streets = []string{
	"Hauptstraße", "Rue de la Paix", "Main St", "Calle Mayor", "ulica Długa", "Baker Street", "長安街",
	"Avenida Paulista", "Bahnhofstrasse", "Strøget", "Via Roma", "Æbeløgade",
}

var words = []string{
	"order", "delivery", "package", "customer", "invoice", "refund", "warehouse", "shipment", "priority",
	"fragile", "please", "call", "before", "arrival", "leave", "at", "the", "door", "gift", "wrap", "return",
	"damaged", "box", "signature", "required", "weekend", "only", "back", "entrance", "second", "floor",
	"café", "naïve", "Straße", "Größe", "über", "façade", "jalapeño", "smørrebrød", "crème", "brûlée",
	"中文", "数据", "迁移", "配送", "日本語", "한국어", "Ελληνικά", "русский", "עברית", "العربية",
	"😀", "🚚", "📦", "✓", "👍🏽", "🇩🇪",
}

var tagWords = []string{
	"vip", "new", "returning", "wholesale", "b2b", "newsletter", "früh-bucher", "promo", "eco", "gift",
	"会员", "⭐", "beta", "churn-risk", "mobile",
}

var orderStatuses = []string{"pending", "paid", "shipped", "delivered", "cancelled", "returned"}

var shippingMethods = []string{"standard", "express", "pickup", "same-day"}

var currencies = []string{"EUR", "USD", "CHF", "GBP", "JPY", "PLN"}

var languages = []string{"en-US", "de-DE", "fr-FR", "ja-JP", "zh-CN", "pt-BR", "pl-PL"}

// category gives products a SKU prefix, so a product's _id is derivable from its index alone.
type category struct{ code, name string }

var categories = []category{
	{"BK", "books"}, {"EL", "electronics"}, {"HM", "home & kitchen"}, {"TY", "toys"}, {"GR", "épicerie"},
	{"SP", "sports"}, {"GD", "garden"}, {"CL", "clothing"},
}

var productAdjectives = []string{"Classic", "Deluxe", "Mini", "Pro", "Öko", "Ultra", "Vintage", "超級", "Smart", "Eco"}

var productNouns = []string{"Lamp", "Kettle", "Backpack", "Notebook", "Kopfhörer", "Teapot", "Chaise", "Drone", "Puzzle", "Sneaker", "水筒", "Café Press"}

var accountStatuses = []string{"active", "active", "active", "frozen", "closed"}

var eventTypes = []string{"deposit", "withdrawal", "transfer", "fee", "interest"}

var eventSources = []string{"api", "batch", "atm", "branch", "mobile"}

var userAgents = []string{
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
	"fleetbank-ios/5.2.1 (iPhone; iOS 17.4)",
	"curl/8.5.0",
	"Bankomat-Firmware/3.1 (Zürich)",
}
