package report

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WriteChart draws the ratios as grouped horizontal bars: for every
// comparison, nsbox's time (always 1.0) next to the peer's time relative to
// it, so a longer peer bar means nsbox is that many times faster. It writes
// SVG to w.
func WriteChart(w io.Writer, ratios []Ratio, title string) error {
	if len(ratios) == 0 {
		return fmt.Errorf("report: chart: no comparisons to draw")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "time relative to nsbox (nsbox = 1; longer peer bar = nsbox faster)"
	ours := make(plotter.Values, len(ratios))
	peers := make(plotter.Values, len(ratios))
	labels := make([]string, len(ratios))
	for i, r := range ratios {
		// Bars are drawn bottom-up; list the first comparison on top.
		j := len(ratios) - 1 - i
		ours[j] = 1
		peers[j] = 1 / r.Value
		labels[j] = fmt.Sprintf("%s: %s vs %s", r.Group, r.Ours, r.Peer)
	}
	width := vg.Points(7)
	bo, err := plotter.NewBarChart(ours, width)
	if err != nil {
		return fmt.Errorf("report: chart: %w", err)
	}
	bp, err := plotter.NewBarChart(peers, width)
	if err != nil {
		return fmt.Errorf("report: chart: %w", err)
	}
	for _, b := range []*plotter.BarChart{bo, bp} {
		b.Horizontal = true
		b.LineStyle.Width = 0
	}
	bo.Color = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	bp.Color = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	bo.Offset = width / 2
	bp.Offset = -width / 2
	p.Add(bo, bp, plotter.NewGrid())
	p.Legend.Add("nsbox", bo)
	p.Legend.Add("peer", bp)
	p.Legend.Top = true
	p.NominalY(labels...)
	height := vg.Length(len(ratios))*vg.Points(22) + vg.Points(90)
	wt, err := p.WriterTo(11*vg.Inch, height, "svg")
	if err != nil {
		return fmt.Errorf("report: chart: %w", err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("report: chart: write: %w", err)
	}
	return nil
}
