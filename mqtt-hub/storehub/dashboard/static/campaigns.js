/* Campaign builder: count the audience and preview the message while the filters are typed.
   Without this script the "Zählen" button does the same with a full page. */
(function () {
  "use strict";
  var form = document.getElementById("campaign-form");
  if (!form) { return; }
  var timer = null;
  var seq = 0;
  var smsChannels = ["sms", "whatsapp"];

  function el(id) { return document.getElementById(id); }
  function setText(id, text) { var e = el(id); if (e) { e.textContent = text; } }

  function showChannel() {
    var sms = smsChannels.indexOf(el("c-channel").value) >= 0;
    el("sms-info").hidden = !sms;
    el("subject-row").hidden = sms;
    el("preview-subject-line").hidden = sms;
  }

  function update() {
    var mine = ++seq;
    var data = new FormData(form);
    data.delete("action");
    form.setAttribute("aria-busy", "true");
    fetch("/campaigns/count", { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (res) {
        if (mine !== seq) { return; }  // an older answer after a newer request
        form.removeAttribute("aria-busy");
        setText("count-error", res.error || "");
        if (res.count === null || res.count === undefined) {
          setText("live-count", "–");
          return;
        }
        setText("live-count", String(res.count));
        setText("preview-to", res.to || el("preview-to").getAttribute("data-nobody") || "");
        setText("preview-subject", res.subject || "");
        setText("preview-text", res.text || "");
        setText("sms-counter", String(res.length));
        el("sms-too-long").hidden = !res.too_long;
      })
      .catch(function () { form.removeAttribute("aria-busy"); });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(update, 200);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", function (ev) {
    if (ev.target && ev.target.id === "c-channel") { showChannel(); }
    later();
  });
  showChannel();
  update();  // the page comes without the count: fetch it now
})();
