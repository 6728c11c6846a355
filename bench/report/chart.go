package report

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WriteChart draws every time comparison as one horizontal bar: how many
// times faster nsbox is than the peer (the peer's median over nsbox's), on a
// logarithmic axis centred on parity, so a bar to the right means nsbox is
// faster and a bar to the left means the peer is; the factor is printed at
// the end of each bar. Memory comparisons are left out: they are not
// speed-ups (RESULTS.md lists them). It writes SVG to w.
func WriteChart(w io.Writer, all []Ratio, title string) error {
	var ratios []Ratio
	for _, r := range all {
		if !r.Memory() {
			ratios = append(ratios, r)
		}
	}
	if len(ratios) == 0 {
		return fmt.Errorf("report: chart: no comparisons to draw")
	}
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = "nsbox speed-up (peer time / nsbox time), log scale; red: the peer is faster (time only)"
	faster := make(plotter.Values, len(ratios))
	slower := make(plotter.Values, len(ratios))
	labels := make([]string, len(ratios))
	var valueXYs plotter.XYs
	var valueTexts []string
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
		// The value sits just past the bar's end, on its side of parity.
		valueXYs = append(valueXYs, plotter.XY{X: v + math.Copysign(0.02, v), Y: float64(j)})
		valueTexts = append(valueTexts, speedup(1/r.Value))
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
	values, err := plotter.NewLabels(plotter.XYLabels{XYs: valueXYs, Labels: valueTexts})
	if err != nil {
		return fmt.Errorf("report: chart: %w", err)
	}
	for i := range values.TextStyle {
		values.TextStyle[i].YAlign = -0.35 // centred on the bar
		if valueXYs[i].X < 0 {
			values.TextStyle[i].XAlign = -1 // ends left of a bar that grows left
		}
	}
	p.Add(plotter.NewGrid(), bf, bs, values)
	p.NominalY(labels...)
	// Ticks at powers of ten of the speed-up, labelled as factors.
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi-lo < 1 {
		hi = lo + 1
	}
	// Room past the last tick for its label and for the value printed at
	// the end of the longest bar.
	p.X.Min, p.X.Max = lo-0.35, hi+0.35
	var ticks []plot.Tick
	for e := lo; e <= hi; e++ {
		ticks = append(ticks, plot.Tick{Value: e, Label: factor(math.Pow(10, e))})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	height := vg.Length(len(ratios))*vg.Points(20) + vg.Points(90)
	// Margins around the plot: gonum draws the title's glyphs from the
	// canvas's very top edge and the axis label to its right edge, where
	// SVG viewers clip them.
	c := vgsvg.New(12*vg.Inch, height)
	p.Draw(draw.Crop(draw.New(c), vg.Points(6), -vg.Points(24), vg.Points(4), -vg.Points(14)))
	if _, err := c.WriteTo(w); err != nil {
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

// speedup prints a bar's value: 3.1x faster, or 0.45x (the peer faster).
func speedup(f float64) string {
	if f >= 10 {
		return fmt.Sprintf("%.0fx", f)
	}
	return fmt.Sprintf("%.2fx", f)
}
