// Draws audiotap reports (level meters per channel and the spectrum).

function dbToUnit(db, floor = -60) {
  if (db === null || db === undefined || !isFinite(db)) return 0;
  return Math.min(1, Math.max(0, (db - floor) / -floor));
}

export function drawAnalysis(canvas, report) {
  const context = canvas.getContext('2d');
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const channels = (report.rms || []).length;
  const meterWidth = 18;
  for (let c = 0; c < channels; c++) {
    const x = 4 + c * (meterWidth + 4);
    const rms = dbToUnit(report.rms[c]);
    const peak = dbToUnit(report.peak ? report.peak[c] : null);
    context.fillStyle = '#2a3340';
    context.fillRect(x, 4, meterWidth, height - 8);
    context.fillStyle = rms > 0.9 ? '#ff6b6b' : '#5fd38d';
    context.fillRect(x, height - 4 - rms * (height - 8), meterWidth, rms * (height - 8));
    context.fillStyle = '#fff';
    context.fillRect(x, height - 4 - peak * (height - 8), meterWidth, 2);
  }
  const bands = report.spectrum || [];
  const left = 8 + channels * (meterWidth + 4);
  const bandWidth = (width - left - 4) / Math.max(1, bands.length);
  context.fillStyle = '#3fa7ff';
  bands.forEach((db, i) => {
    const h = dbToUnit(db, -100) * (height - 8);
    context.fillRect(left + i * bandWidth, height - 4 - h, Math.max(1, bandWidth - 1), h);
  });
  context.fillStyle = '#e8eaed';
  const words = [];
  if (report.momentary !== undefined && report.momentary !== null) words.push(`${report.momentary.toFixed(1)} LUFS`);
  if (report.pitch) words.push(`${report.pitch.toFixed(0)} Hz`);
  if (report.voice) words.push('voice');
  context.fillText(words.join('  '), left + 4, 14);
}
