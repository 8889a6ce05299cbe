/* Mes Conseils Covid: the advice, computed in this browser from the published rules.
 *
 * Nothing the person answers leaves the page: no request is made after the page has loaded
 * (the page's Content-Security-Policy forbids it anyway: connect-src is 'none'), nothing is
 * stored. The rules are in the page (<script type="application/json" id="advice-rules">);
 * the engine below implements the same expression language as citizens/advice.py, and the
 * shared cases (citizens/data/advice-cases.json) are run through both.
 */
"use strict";

(function () {
  // --- the engine (same semantics as citizens/advice.py) ----------------------------------
  function isNumber(v) {
    return typeof v === "number" && isFinite(v);
  }

  function value(expr, facts) {
    if (typeof expr === "number" || typeof expr === "boolean") return expr;
    if (Object.prototype.hasOwnProperty.call(expr, "fact")) {
      const v = facts[expr.fact];
      return v === undefined ? null : v;
    }
    const op = Object.keys(expr)[0];
    const a = value(expr[op][0], facts);
    const b = value(expr[op][1], facts);
    if (!isNumber(a) || !isNumber(b)) return null;
    if (op === "mul") return a * b;
    if (op === "div") return b === 0 ? null : a / b;
    throw new Error("unknown value operator " + op);
  }

  function compare(op, v, literal) {
    if (v === null || v === undefined) return false;
    switch (op) {
      case "is": return v === literal;
      case "in": return literal.indexOf(v) !== -1;
      case "has": return Array.isArray(v) && v.indexOf(literal) !== -1;
      case "hasAny": return Array.isArray(v) && literal.some((x) => v.indexOf(x) !== -1);
    }
    if (!isNumber(v)) return false;
    switch (op) {
      case "gt": return v > literal;
      case "gte": return v >= literal;
      case "lt": return v < literal;
      case "lte": return v <= literal;
    }
    throw new Error("unknown operator " + op);
  }

  function holds(rules, node, facts) {
    const op = Object.keys(node)[0];
    const arg = node[op];
    switch (op) {
      case "all": return arg.every((c) => holds(rules, c, facts));
      case "any": return arg.some((c) => holds(rules, c, facts));
      case "not": return !holds(rules, arg, facts);
      case "ref": return holds(rules, rules.conditions[arg], facts);
    }
    const subject = arg[0];
    const v = typeof subject === "string"
      ? (facts[subject] === undefined ? null : facts[subject])
      : value(subject, facts);
    return compare(op, v, arg[1]);
  }

  /** The matching rule ids, in order: {version, advice: [ids]}. */
  function evaluate(rules, answers) {
    const facts = Object.assign({}, answers);
    const derived = rules.derived || {};
    Object.keys(derived).forEach((name) => { facts[name] = value(derived[name], facts); });
    const matched = [];
    rules.sections.forEach((section) => {
      for (const rule of rules.rules) {
        if (rule.section !== section.id) continue;
        if (holds(rules, rule.when, facts)) {
          matched.push(rule.id);
          if (section.mode === "first") break;
        }
      }
    });
    return { version: rules.version, advice: matched };
  }

  // --- the page ---------------------------------------------------------------------------
  const rulesNode = document.getElementById("advice-rules");
  if (!rulesNode) return;
  const rules = JSON.parse(rulesNode.textContent);
  const lang = document.documentElement.lang === "en" ? "en" : "fr";
  const form = document.getElementById("advice-form");
  const out = document.getElementById("advice-result");
  const errors = document.getElementById("advice-errors");
  const ui = JSON.parse(document.getElementById("advice-ui").textContent);

  /** The form's answers: only what the person filled in. */
  function readAnswers() {
    const answers = {};
    rules.questions.forEach((q) => {
      const name = "q-" + q.id;
      if (q.type === "integer") {
        const raw = form.elements[name].value.trim();
        if (raw !== "") answers[q.id] = /^\d+$/.test(raw) ? parseInt(raw, 10) : NaN;
      } else if (q.type === "departement") {
        const v = form.elements[name].value;
        if (v !== "") answers[q.id] = v;
      } else if (q.type === "boolean" || q.type === "choice") {
        const checked = form.querySelector("input[name='" + name + "']:checked");
        if (checked) answers[q.id] = q.type === "boolean" ? checked.value === "yes" : checked.value;
      } else if (q.type === "multi") {
        answers[q.id] = Array.from(form.querySelectorAll("input[name='" + name + "']:checked"))
          .map((box) => box.value);
      }
    });
    return answers;
  }

  /** What is wrong with the answers, as [question id, message]. */
  function problems(answers) {
    const found = [];
    rules.questions.forEach((q) => {
      const v = answers[q.id];
      if (v === undefined) {
        if (q.required) found.push([q.id, ui.required]);
      } else if (q.type === "integer" && (!isNumber(v) || v < q.min || v > q.max)) {
        found.push([q.id, ui.between.replace("{min}", q.min).replace("{max}", q.max)]);
      }
    });
    return found;
  }

  function clearErrors() {
    errors.hidden = true;
    errors.textContent = "";
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    form.querySelectorAll(".error-text.js").forEach((el) => el.remove());
  }

  function showErrors(found) {
    const title = document.createElement("h2");
    title.textContent = ui.errors_title;
    const list = document.createElement("ul");
    found.forEach(([qid, message]) => {
      const question = rules.questions.find((q) => q.id === qid);
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = "#q-" + qid + "-field";
      link.textContent = question.text[lang] + " : " + message;
      item.appendChild(link);
      list.appendChild(item);
      const field = document.getElementById("q-" + qid + "-field");
      const note = document.createElement("p");
      note.className = "error-text js";
      note.id = "q-" + qid + "-error";
      note.textContent = message;
      field.insertBefore(note, field.children[1] || null);
      field.querySelectorAll("input, select").forEach((input) => {
        input.setAttribute("aria-invalid", "true");
      });
    });
    errors.appendChild(title);
    errors.appendChild(list);
    errors.hidden = false;
    errors.focus();
  }

  function paragraph(text, className) {
    const p = document.createElement("p");
    p.textContent = text;
    if (className) p.className = className;
    return p;
  }

  function show(result) {
    out.textContent = "";
    const heading = document.createElement("h2");
    heading.id = "advice-heading";
    heading.tabIndex = -1;
    heading.textContent = ui.result_title;
    out.appendChild(heading);
    out.appendChild(paragraph(
      ui.computed.replace("{date}", new Date().toLocaleDateString(lang === "fr" ? "fr-FR" : "en-GB"))
        .replace("{version}", result.version), "hint"));
    const byId = {};
    rules.rules.forEach((r) => { byId[r.id] = r; });
    rules.sections.forEach((section) => {
      const ids = result.advice.filter((id) => byId[id].section === section.id);
      if (!ids.length) return;
      const block = document.createElement("section");
      block.className = "advice-section";
      const h3 = document.createElement("h3");
      h3.textContent = section.title[lang];
      block.appendChild(h3);
      ids.forEach((id) => {
        const rule = byId[id];
        const item = document.createElement("div");
        item.className = "advice level-" + (rule.level || "info");
        item.dataset.rule = id;
        item.appendChild(paragraph(rule.text[lang]));
        if (rule.link === "sites") {
          const link = document.createElement("a");
          link.href = ui.sites_url;
          link.textContent = ui.sites_link;
          item.appendChild(link);
        }
        const cite = document.createElement("p");
        cite.className = "source";
        cite.textContent = ui.source + " " + rule.sources.map((s) => {
          const source = rules.sources[s];
          return source.publisher + ", " + source.date;
        }).join(" ; ") + (rule.assumption ? " — " + ui.assumption : "");
        item.appendChild(cite);
        block.appendChild(item);
      });
      out.appendChild(block);
    });
    const actions = document.createElement("div");
    actions.className = "actions no-print";
    const print = document.createElement("button");
    print.type = "button";
    print.className = "button";
    print.id = "advice-print";
    print.textContent = ui.print;
    print.addEventListener("click", () => window.print());
    const save = document.createElement("button");
    save.type = "button";
    save.className = "button secondary";
    save.id = "advice-save";
    save.textContent = ui.save;
    save.addEventListener("click", () => saveLocally());
    actions.appendChild(print);
    actions.appendChild(save);
    out.appendChild(actions);
    out.hidden = false;
    heading.focus();
  }

  /** A self-contained HTML file of the advice, made here and handed to the browser's
   * download: nothing is uploaded. */
  function saveLocally() {
    const copy = out.cloneNode(true);
    copy.querySelectorAll(".no-print").forEach((el) => el.remove());
    const html = "<!doctype html><html lang=\"" + lang + "\"><meta charset=\"utf-8\"><title>"
      + ui.result_title + "</title><body>" + copy.innerHTML + "</body></html>";
    const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = ui.filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    const answers = readAnswers();
    const found = problems(answers);
    if (found.length) {
      out.hidden = true;
      showErrors(found);
      return;
    }
    show(evaluate(rules, answers));
  });

  window.MesConseils = { evaluate: evaluate, rules: rules, readAnswers: readAnswers };
})();
