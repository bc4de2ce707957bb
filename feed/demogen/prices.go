package demogen

import "math"

// Price is the body of a "prices.<SYMBOL>" message.
type Price struct {
	Symbol    string  `json:"symbol"`     // e.g. "AAPL", the key
	Name      string  `json:"name"`       // e.g. "Apple"
	Price     float64 `json:"price"`      // last price, 2 decimals, above 0
	Open      float64 `json:"open"`       // opening price
	Change    float64 `json:"change"`     // price - open, 2 decimals
	ChangePct float64 `json:"change_pct"` // change in % of open, 2 decimals
	Time      string  `json:"time"`       // RFC 3339 with nanoseconds, UTC
}

type stock struct {
	symbol, name string
	price, open  float64
}

var demoStocks = []stock{
	{"AAPL", "Apple", 189.20, 187.10},
	{"MSFT", "Microsoft", 415.50, 412.00},
	{"GOOGL", "Alphabet", 172.30, 171.00},
	{"AMZN", "Amazon", 185.60, 186.20},
	{"NVDA", "NVIDIA", 121.40, 118.90},
	{"META", "Meta Platforms", 505.10, 500.00},
	{"TSLA", "Tesla", 182.70, 185.00},
	{"JPM", "JPMorgan Chase", 198.40, 197.50},
	{"V", "Visa", 276.90, 275.30},
	{"JNJ", "Johnson & Johnson", 152.10, 152.60},
	{"WMT", "Walmart", 68.40, 68.10},
	{"PG", "Procter & Gamble", 166.20, 165.80},
	{"MA", "Mastercard", 455.70, 452.90},
	{"XOM", "Exxon Mobil", 112.80, 113.50},
	{"HD", "Home Depot", 345.20, 342.70},
	{"KO", "Coca-Cola", 62.90, 62.70},
	{"PEP", "PepsiCo", 171.30, 172.00},
	{"DIS", "Disney", 101.60, 100.90},
	{"NFLX", "Netflix", 640.20, 633.50},
	{"AMD", "AMD", 158.90, 155.40},
}

// round2 rounds to cents. It never returns negative zero: JSON would carry
// it as -0, which a browser's JSON.stringify turns into 0, so the same value
// would have two spellings.
func round2(x float64) float64 {
	r := math.Round(x*100) / 100
	if r == 0 {
		return 0
	}
	return r
}

// walk moves the price by a normal step of 0.15 % (a random walk).
func (g *Generator) walk(s *stock) {
	s.price = max(round2(s.price*(1+g.rng.NormFloat64()*0.0015)), 0.01)
}

func (s *stock) message(ts string) Message {
	body := Price{
		Symbol:    s.symbol,
		Name:      s.name,
		Price:     s.price,
		Open:      s.open,
		Change:    round2(s.price - s.open),
		ChangePct: round2((s.price - s.open) / s.open * 100),
		Time:      ts,
	}
	return Message{Subject: PricesFeed + "." + s.symbol, Body: mustJSON(body)}
}
