// The run report (see report.h).
#include "trainer/report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <vector>

#include "common/error.h"
#include "common/fs.h"
#include "trainer/metrics.h"

namespace reel::trainer {
namespace {

namespace fs = std::filesystem;

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out += table[(v >> (6 * k)) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= uint8_t(bytes[i + 1]) << 8;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;
  bool dots = false;  // markers (sparse series) instead of a line only
};

// A line chart as inline SVG: axes with 5 ticks each, one polyline per series, a legend.
std::string chart(const std::string& title, const std::string& y_label, const std::vector<Series>& series,
                  bool log_y = false) {
  const double w = 640, h = 300, left = 60, right = 150, top = 30, bottom = 40;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  auto ty = [&](double y) { return log_y ? std::log10(std::max(y, 1e-12)) : y; };
  for (const auto& s : series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, ty(y)), y1 = std::max(y1, ty(y));
    }
  std::ostringstream o;
  o << "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
    << "\" role=\"img\" aria-label=\"" << escape(title) << "\">";
  o << "<text x=\"" << left << "\" y=\"18\" class=\"title\">" << escape(title) << "</text>";
  if (!std::isfinite(x0)) {
    o << "<text x=\"" << left << "\" y=\"" << h / 2 << "\">no data yet</text></svg></figure>";
    return o.str();
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + (y0 == 0 ? 1 : std::abs(y0) * 0.1);
  const double pw = w - left - right, ph = h - top - bottom;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + (1 - (ty(y) - y0) / (y1 - y0)) * ph; };
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph << "\" class=\"plot\"/>";
  for (int i = 0; i <= 4; ++i) {
    const double xv = x0 + (x1 - x0) * i / 4, yv = y0 + (y1 - y0) * i / 4;
    const double xp = left + pw * i / 4, yp = top + ph * (1 - i / 4.0);
    o << "<line x1=\"" << xp << "\" y1=\"" << top + ph << "\" x2=\"" << xp << "\" y2=\"" << top + ph + 5 << "\" class=\"axis\"/>"
      << "<text x=\"" << xp << "\" y=\"" << top + ph + 18 << "\" text-anchor=\"middle\">"
      << num(x1 - x0 >= 8 ? std::round(xv) : xv) << "</text>"
      << "<line x1=\"" << left - 5 << "\" y1=\"" << yp << "\" x2=\"" << left + pw << "\" y2=\"" << yp << "\" class=\"grid\"/>"
      << "<text x=\"" << left - 8 << "\" y=\"" << yp + 4 << "\" text-anchor=\"end\">"
      << num(log_y ? std::pow(10.0, yv) : yv) << "</text>";
  }
  o << "<text x=\"" << left + pw / 2 << "\" y=\"" << h - 5 << "\" text-anchor=\"middle\">step</text>";
  o << "<text x=\"14\" y=\"" << top + ph / 2 << "\" transform=\"rotate(-90 14 " << top + ph / 2
    << ")\" text-anchor=\"middle\">" << escape(y_label) << "</text>";
  int row = 0;
  for (const auto& s : series) {
    std::string points;
    for (const auto& [x, y] : s.points)
      if (std::isfinite(y)) points += num(px(x)) + "," + num(py(y)) + " ";
    o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.5\" points=\"" << points << "\"/>";
    if (s.dots)
      for (const auto& [x, y] : s.points)
        if (std::isfinite(y)) o << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"3\" fill=\"" << s.color << "\"/>";
    const double ly = top + 12 + 16 * row++;
    o << "<line x1=\"" << w - right + 10 << "\" y1=\"" << ly - 4 << "\" x2=\"" << w - right + 28 << "\" y2=\"" << ly - 4
      << "\" stroke=\"" << s.color << "\" stroke-width=\"3\"/><text x=\"" << w - right + 32 << "\" y=\"" << ly << "\">"
      << escape(s.name) << "</text>";
  }
  o << "</svg></figure>";
  return o.str();
}

const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

double value(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

std::string write_report(const ReportOptions& o) {
  const std::string metrics_path = o.run_dir + "/metrics.jsonl", eval_path = o.run_dir + "/eval.jsonl";
  const std::vector<nlohmann::json> metrics = read_jsonl(metrics_path, /*skip_bad_lines=*/true),
                                   evals = read_jsonl(eval_path, /*skip_bad_lines=*/true);
  if (metrics.empty() && evals.empty())
    fail("report: '", o.run_dir, "' has neither metrics.jsonl nor eval.jsonl; give a run directory (run.dir), and run ",
         "`reel eval-run ", o.run_dir, "` for its evaluations");
  const std::string out = o.out.empty() ? o.run_dir + "/report.html" : o.out;
  const fs::path page_dir = fs::absolute(out).parent_path();

  // Training curves.
  Series loss{"training loss", kColors[0], {}}, val{"validation loss", kColors[1], {}, true}, lr{"LR", kColors[2], {}};
  std::vector<Series> per_t;
  for (const auto& m : metrics) {
    const double step = value(m, "step");
    loss.points.emplace_back(step, value(m, "loss"));
    lr.points.emplace_back(step, value(m, "lr"));
    if (m.contains("val_loss")) val.points.emplace_back(step, value(m, "val_loss"));
    if (m.contains("val_loss_t") && m.contains("val_t")) {
      const auto& ts = m["val_t"];
      for (size_t i = 0; i < ts.size(); ++i) {
        if (per_t.size() <= i) per_t.push_back({"t = " + num(ts[i].get<double>()), kColors[i % 8], {}, true});
        per_t[i].points.emplace_back(step, m["val_loss_t"][i].get<double>());
      }
    }
  }
  // Evaluation metrics per checkpoint.
  Series color{"colour", kColors[3], {}, true}, motion{"motion", kColors[4], {}, true}, shape{"shape", kColors[5], {}, true},
      eval_val{"validation loss", kColors[1], {}, true};
  for (const auto& e : evals) {
    const double step = value(e, "step");
    color.points.emplace_back(step, value(e, "color_accuracy"));
    motion.points.emplace_back(step, value(e, "motion_accuracy"));
    shape.points.emplace_back(step, value(e, "shape_accuracy"));
    eval_val.points.emplace_back(step, value(e, "val_loss"));
  }

  std::ostringstream h;
  h << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Reel run " << escape(o.run_dir)
    << "</title><style>body{font-family:sans-serif;margin:24px;color:#222}figure{display:inline-block;margin:8px}"
       "svg text{font-size:11px;fill:#333}svg .title{font-size:14px;font-weight:bold}.plot{fill:#fafafa;stroke:#999}"
       ".grid{stroke:#e4e4e4}.axis{stroke:#999}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
       "padding:3px 8px;text-align:right}.clips{display:flex;flex-wrap:wrap;gap:10px}.clip{width:150px;font-size:11px}"
       "video{width:150px;image-rendering:pixelated;background:#000}</style></head><body>";
  h << "<h1>Reel run <code>" << escape(o.run_dir) << "</code></h1><p>" << metrics.size() << " logged steps";
  if (!metrics.empty()) h << " up to step " << num(value(metrics.back(), "step"));
  h << "; " << evals.size() << " evaluated checkpoints.</p>";
  h << "<h2>Training</h2>" << chart("Loss", "flow-matching MSE", {loss, val}, true) << chart("Learning rate", "LR", {lr});
  h << "<h2>Validation loss at fixed t</h2>" << chart("Validation loss per t", "MSE", per_t, true);
  h << "<h2>Evaluation per checkpoint</h2>" << chart("Accuracy", "share of prompts", {color, motion, shape})
    << chart("Validation loss (eval-run)", "MSE", {eval_val});
  if (!evals.empty()) {
    h << "<table><tr><th>step</th><th>colour</th><th>motion</th><th>shape</th><th>val loss</th><th>no caption</th></tr>";
    auto cell = [](const nlohmann::json& e, const char* k) {
      return e.contains(k) && e[k].is_number() ? num(e[k].get<double>()) : std::string("-");
    };
    for (const auto& e : evals)
      h << "<tr><td>" << cell(e, "step") << "</td><td>" << cell(e, "color_accuracy") << "</td><td>"
        << cell(e, "motion_accuracy") << "</td><td>" << cell(e, "shape_accuracy") << "</td><td>" << cell(e, "val_loss")
        << "</td><td>" << cell(e, "val_loss_uncond") << "</td></tr>";
    h << "</table>";
  }
  // Samples, newest checkpoint first.
  int64_t embedded = 0;
  for (auto it = evals.rbegin(); it != evals.rend(); ++it) {
    if (!it->contains("videos")) continue;
    h << "<h2>Samples at step " << num(value(*it, "step")) << "</h2><div class=\"clips\">";
    int shown = 0;
    for (const auto& v : (*it)["videos"]) {
      if (shown++ >= o.videos_per_checkpoint) break;
      const fs::path file = fs::path(o.run_dir) / v["file"].get<std::string>();
      if (!fs::exists(file)) continue;
      std::string src;
      const int64_t size = static_cast<int64_t>(fs::file_size(file));
      if (embedded + size <= o.embed_budget_bytes) {
        src = "data:video/mp4;base64," + base64(read_file(file.string()));
        embedded += size;
      } else {
        src = fs::relative(fs::absolute(file), page_dir).string();
      }
      h << "<div class=\"clip\"><video autoplay loop muted playsinline controls src=\"" << src << "\"></video><br>"
        << escape(v.value("prompt", "")) << "</div>";
    }
    h << "</div>";
  }
  h << "</body></html>\n";
  write_file_atomic(out, h.str());
  return out;
}

}  // namespace reel::trainer
