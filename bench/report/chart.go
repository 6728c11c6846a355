package report

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WriteChart draws every comparison as one horizontal bar: how many times
// faster nsbox is than the peer (the peer's median over nsbox's), on a
// logarithmic axis centred on parity, so a bar to the right means nsbox is
// faster and a bar to the left means the peer is. It writes SVG to w.
func WriteChart(w io.Writer, ratios []Ratio, title string) error {
	if len(ratios) == 0 {
		return fmt.Errorf("report: chart: no comparisons to draw")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "nsbox speed-up (peer time / nsbox time), log scale; red: peer faster"
	faster := make(plotter.Values, len(ratios))
	slower := make(plotter.Values, len(ratios))
	labels := make([]string, len(ratios))
	lo, hi := 0.0, 0.0
	for i, r := range ratios {
		// Bars are drawn bottom-up; list the first comparison on top.
		j := len(ratios) - 1 - i
		v := math.Log10(1 / r.Value)
		if v >= 0 {
			faster[j] = v
		} else {
			slower[j] = v
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
		labels[j] = fmt.Sprintf("%s: %s vs %s", r.Group, r.Ours, r.Peer)
	}
	width := vg.Points(12)
	bf, err := plotter.NewBarChart(faster, width)
	if err != nil {
		return fmt.Errorf("report: chart: %w", err)
	}
	bs, err := plotter.NewBarChart(slower, width)
	if err != nil {
		return fmt.Errorf("report: chart: %w", err)
	}
	for _, b := range []*plotter.BarChart{bf, bs} {
		b.Horizontal = true
		b.LineStyle.Width = 0
	}
	bf.Color = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	bs.Color = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	p.Add(plotter.NewGrid(), bf, bs)
	p.NominalY(labels...)
	// Ticks at powers of ten of the speed-up, labelled as factors.
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi-lo < 1 {
		hi = lo + 1
	}
	// A little room past the last tick, so its label is not cut.
	p.X.Min, p.X.Max = lo-0.08, hi+0.08
	var ticks []plot.Tick
	for e := lo; e <= hi; e++ {
		ticks = append(ticks, plot.Tick{Value: e, Label: factor(math.Pow(10, e))})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	height := vg.Length(len(ratios))*vg.Points(20) + vg.Points(90)
	wt, err := p.WriterTo(11*vg.Inch, height, "svg")
	if err != nil {
		return fmt.Errorf("report: chart: %w", err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("report: chart: write: %w", err)
	}
	return nil
}

// factor labels a speed-up: 0.1x, 1x, 10x, 100x.
func factor(f float64) string {
	if f < 1 {
		return fmt.Sprintf("%gx (peer faster)", f)
	}
	return fmt.Sprintf("%gx", f)
}
