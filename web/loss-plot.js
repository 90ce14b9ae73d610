// The loss curve of the calibration page: an SVG line with one point per iteration, grid lines
// at round loss values, and colors taken from the page's CSS classes (style.css, .plot).

const SVG = 'http://www.w3.org/2000/svg';

function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

// Returns round values (steps of 1, 2, 2.5 or 5 times a power of 10) from min to max, at most
// about count of them.
function niceTicks(min, max, count) {
  const span = max - min || Math.abs(max) || 1;
  const step = 10 ** Math.floor(Math.log10(span / count));
  const multiple = [1, 2, 2.5, 5, 10].find((factor) => span / (step * factor) <= count) ?? 10;
  const size = step * multiple;
  const ticks = [];
  for (let value = Math.ceil(min / size) * size; value <= max + size * 1e-9; value += size) ticks.push(Number(value.toPrecision(12)));
  return ticks;
}

// Draws losses ([{ iteration, loss }], iteration from 1) into the svg element, with the x axis
// spanning iterations. Sets svg.dataset.points to the number of points drawn.
export function drawLossPlot(plot, losses, iterations) {
  const width = plot.clientWidth || 600;
  const height = plot.clientHeight || 260;
  const margin = { left: 48, right: 14, top: 12, bottom: 28 };
  plot.setAttribute('viewBox', `0 0 ${width} ${height}`);
  plot.replaceChildren();
  plot.dataset.points = String(losses.length);

  const values = losses.map((point) => point.loss);
  let low = values.length ? Math.min(...values) : 0;
  let high = values.length ? Math.max(...values) : 1;
  if (high - low < 1e-6) {
    low -= 0.5;
    high += 0.5;
  }
  const pad = (high - low) * 0.08;
  low -= pad;
  high += pad;
  const x = (iteration) => margin.left + ((iteration - 1) / Math.max(iterations - 1, 1)) * (width - margin.left - margin.right);
  const y = (loss) => margin.top + (1 - (loss - low) / (high - low)) * (height - margin.top - margin.bottom);

  for (const tick of niceTicks(low, high, 5)) {
    plot.append(svgElement('line', { class: 'grid', x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick) }));
    plot.append(svgElement('text', { class: 'tick', x: margin.left - 6, y: y(tick) + 4, 'text-anchor': 'end' }, String(tick)));
  }
  for (const tick of niceTicks(1, iterations, Math.min(8, iterations)).filter((value) => Number.isInteger(value))) {
    plot.append(svgElement('text', { class: 'tick', x: x(tick), y: height - 8, 'text-anchor': 'middle' }, String(tick)));
  }
  plot.append(svgElement('line', { class: 'axis', x1: margin.left, x2: margin.left, y1: margin.top, y2: height - margin.bottom }));
  plot.append(svgElement('line', { class: 'axis', x1: margin.left, x2: width - margin.right, y1: height - margin.bottom, y2: height - margin.bottom }));
  if (losses.length === 0) {
    plot.append(svgElement('text', { class: 'tick', x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'The loss of each iteration appears here.'));
    return;
  }
  const path = losses.map((point, index) => `${index === 0 ? 'M' : 'L'}${x(point.iteration).toFixed(1)},${y(point.loss).toFixed(1)}`).join(' ');
  plot.append(svgElement('path', { class: 'line', d: path }));
  for (const point of losses) {
    const circle = svgElement('circle', { class: 'point', cx: x(point.iteration), cy: y(point.loss), r: losses.length > 60 ? 1.5 : 3 });
    circle.append(svgElement('title', {}, `iteration ${point.iteration}: loss ${point.loss.toFixed(4)}`));
    plot.append(circle);
  }
}
