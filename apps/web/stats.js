// Live statistics of a session, plotted over the last minute on small
// canvases (no charting library).

const SERIES = [
  { key: 'bitrate', label: 'bitrate', unit: 'kbit/s', scale: 1 / 1000 },
  { key: 'framesPerSecond', label: 'frame rate', unit: 'fps', scale: 1 },
  { key: 'lossRate', label: 'packets lost', unit: '/s', scale: 1 },
  { key: 'roundTripTime', label: 'round trip', unit: 'ms', scale: 1000 },
  { key: 'jitter', label: 'jitter', unit: 'ms', scale: 1000 },
];

const WINDOW_SECONDS = 60;

export class StatsPanel {
  constructor(container) {
    this.container = container;
    this.samples = [];
    this.resolution = document.createElement('div');
    this.resolution.className = 'stat-resolution';
    container.append(this.resolution);
    this.plots = SERIES.map((series) => {
      const box = document.createElement('figure');
      box.className = 'stat';
      const caption = document.createElement('figcaption');
      const canvas = document.createElement('canvas');
      canvas.width = 240;
      canvas.height = 60;
      box.append(caption, canvas);
      container.append(box);
      return { series, caption, canvas };
    });
  }

  /** Adds one `Session.stats()` summary and redraws. */
  add(summary) {
    const previous = this.samples[this.samples.length - 1];
    const seconds = previous ? (summary.time - previous.time) / 1000 : 1;
    summary.lossRate = previous ? Math.max(0, summary.packetsLost - previous.packetsLost) / seconds : 0;
    this.samples.push(summary);
    const oldest = summary.time - WINDOW_SECONDS * 1000;
    while (this.samples.length && this.samples[0].time < oldest) this.samples.shift();
    this.resolution.textContent = summary.width ? `${summary.width}×${summary.height}` : 'no video';
    this.resolution.dataset.width = summary.width;
    this.resolution.dataset.height = summary.height;
    for (const plot of this.plots) this.draw(plot, summary.time);
  }

  draw({ series, caption, canvas }, now) {
    const values = this.samples.map((s) => (s[series.key] || 0) * series.scale);
    const latest = values[values.length - 1] || 0;
    caption.textContent = `${series.label}: ${latest.toFixed(latest < 10 ? 1 : 0)} ${series.unit}`;
    const context = canvas.getContext('2d');
    const { width, height } = canvas;
    context.clearRect(0, 0, width, height);
    const top = Math.max(1, ...values) * 1.1;
    context.strokeStyle = '#3fa7ff';
    context.lineWidth = 1.5;
    context.beginPath();
    this.samples.forEach((sample, i) => {
      const x = width - ((now - sample.time) / (WINDOW_SECONDS * 1000)) * width;
      const y = height - (values[i] / top) * (height - 4) - 2;
      if (i === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
  }
}

/** Samples `session.stats()` every second into `panel` until the session ends. */
export function followStats(session, panel) {
  const timer = setInterval(async () => {
    if (session.ended) return clearInterval(timer);
    panel.add(await session.stats());
  }, 1000);
  session.addEventListener('ended', () => clearInterval(timer));
  return timer;
}
