// A minimal Parley client: connect, join one room, chat. The full client is its own module later.
// Everything from the network is rendered with textContent, never as HTML.

const $ = (id) => document.getElementById(id);
let socket = null;
let room = null;
const members = new Set();

function status(text) { $("status").textContent = text; }

function addLine(from, text, notice = false) {
  const li = document.createElement("li");
  if (notice) li.className = "notice";
  if (from) {
    const who = document.createElement("span");
    who.className = "from";
    who.textContent = from;
    li.append(who);
  }
  li.append(document.createTextNode(text));
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
}

function renderMembers() {
  $("members").replaceChildren(...[...members].sort().map((m) => {
    const li = document.createElement("li");
    li.textContent = m;
    return li;
  }));
}

function handle(frame) {
  switch (frame.type) {
    case "welcome": status(`connected as ${frame.user}`); break;
    case "joined":
      members.clear(); frame.members.forEach((m) => members.add(m)); renderMembers();
      frame.history.forEach((m) => addLine(m.from, m.text));
      $("text").disabled = false; $("compose").querySelector("button").disabled = false;
      break;
    case "message": addLine(frame.from, frame.text); break;
    case "presence":
      if (frame.state === "online") members.add(frame.user); else members.delete(frame.user);
      renderMembers();
      break;
    case "error": addLine(null, `error: ${frame.code}: ${frame.message}`, true); break;
  }
}

$("connect").addEventListener("submit", (e) => {
  e.preventDefault();
  if (socket) socket.close(1000);
  room = $("room").value;
  const name = $("name").value.trim();
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (name) url.searchParams.set("name", name);
  socket = new WebSocket(url);
  status("connecting…");
  socket.onopen = () => socket.send(JSON.stringify({ type: "join", room }));
  socket.onmessage = (ev) => handle(JSON.parse(ev.data));
  socket.onclose = (ev) => { status(`disconnected (${ev.code})`); $("text").disabled = true; };
});

$("compose").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value;
  if (!text || !socket) return;
  socket.send(JSON.stringify({ type: "send", room, text, cid: crypto.randomUUID?.() ?? String(Math.random()).slice(2) }));
  $("text").value = "";
});
