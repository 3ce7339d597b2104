// Parlour quickstart: join a room with the real twilio-video SDK. The only Parlour-specific
// part is the two connect options: `wsServer` (this server's /signaling) and `insights: false`.
(function () {
  'use strict';

  const Video = window.Twilio && window.Twilio.Video;
  const $ = (id) => document.getElementById(id);
  const state = { room: null, screenTrack: null };
  window.quickstart = state; // for tests and the browser console

  function status(text) {
    $('status').textContent = text || '';
  }

  function wsServer() {
    return location.origin.replace(/^http/, 'ws') + '/signaling';
  }

  async function fetchToken(identity, room) {
    const query = new URLSearchParams({ identity, room });
    const response = await fetch('/quickstart/token?' + query);
    if (response.status === 404) {
      throw new Error('The development token endpoint is off: start Parlour with '
        + '`parlour serve --dev`, or paste a token from `parlour token`.');
    }
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || 'could not get a token');
    return body.token;
  }

  // One tile per participant; video tracks are attached inside it.
  function tileFor(participant, local) {
    const id = 'tile-' + participant.sid;
    let tile = document.getElementById(id);
    if (!tile) {
      tile = document.createElement('div');
      tile.id = id;
      tile.className = 'tile' + (local ? ' local' : ' remote');
      tile.dataset.identity = participant.identity;
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = participant.identity + (local ? ' (you)' : '');
      tile.appendChild(name);
      $('tiles').appendChild(tile);
    }
    return tile;
  }

  function attach(track, participant, local) {
    if (track.kind === 'data') return;
    const el = track.attach();
    if (track.kind === 'video') {
      el.dataset.trackName = track.name;
      el.muted = true;
      el.playsInline = true;
      tileFor(participant, local).insertBefore(el, tileFor(participant, local).firstChild);
    } else if (!local) {
      el.hidden = true;
      tileFor(participant, local).appendChild(el);
    }
  }

  function detach(track) {
    if (track.detach) track.detach().forEach((el) => el.remove());
  }

  function renderParticipants() {
    const list = $('participants');
    list.textContent = '';
    if (!state.room) return;
    const everyone = [state.room.localParticipant, ...state.room.participants.values()];
    everyone.forEach((p) => {
      const item = document.createElement('li');
      item.textContent = p.identity + (p === state.room.localParticipant ? ' (you)' : '');
      list.appendChild(item);
    });
  }

  function addRemote(participant) {
    tileFor(participant, false);
    participant.tracks.forEach((pub) => {
      if (pub.track) attach(pub.track, participant, false);
    });
    participant.on('trackSubscribed', (track) => attach(track, participant, false));
    participant.on('trackUnsubscribed', detach);
    renderParticipants();
  }

  function removeRemote(participant) {
    const tile = document.getElementById('tile-' + participant.sid);
    if (tile) tile.remove();
    renderParticipants();
  }

  function leftRoom(error) {
    if (state.screenTrack) state.screenTrack.stop();
    state.room = null;
    state.screenTrack = null;
    $('tiles').textContent = '';
    renderParticipants();
    $('call').hidden = true;
    $('join-form').hidden = false;
    status(error ? `Disconnected: ${error.message} (${error.code})` : '');
  }

  async function join(event) {
    event.preventDefault();
    const identity = $('identity').value.trim();
    const roomName = $('room').value.trim();
    $('join').disabled = true;
    status('Joining…');
    try {
      const token = $('token').value.trim() || await fetchToken(identity, roomName);
      const room = await Video.connect(token, {
        name: roomName,
        wsServer: wsServer(),
        insights: false,
        audio: true,
        video: { width: 640, height: 480 },
      });
      state.room = room;
      $('join-form').hidden = true;
      $('call').hidden = false;
      $('room-name').textContent = room.name;
      room.localParticipant.tracks.forEach((pub) => attach(pub.track, room.localParticipant, true));
      room.participants.forEach(addRemote);
      room.on('participantConnected', addRemote);
      room.on('participantDisconnected', removeRemote);
      room.on('disconnected', (r, error) => leftRoom(error));
      renderParticipants();
      status('');
    } catch (error) {
      status(`Could not join: ${error.message}${error.code ? ` (${error.code})` : ''}`);
    } finally {
      $('join').disabled = false;
    }
  }

  function toggle(kind, button, onLabel, offLabel) {
    if (!state.room) return;
    let enabled = true;
    state.room.localParticipant.tracks.forEach((pub) => {
      if (pub.kind === kind && pub.track !== state.screenTrack) {
        if (pub.track.isEnabled) pub.track.disable(); else pub.track.enable();
        enabled = pub.track.isEnabled;
      }
    });
    button.textContent = enabled ? onLabel : offLabel;
  }

  async function share() {
    const room = state.room;
    if (!room) return;
    if (state.screenTrack) {
      room.localParticipant.unpublishTrack(state.screenTrack);
      detach(state.screenTrack);
      state.screenTrack.stop();
      state.screenTrack = null;
      $('share').textContent = 'Share screen';
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true });
      const track = new Video.LocalVideoTrack(stream.getVideoTracks()[0], { name: 'screen' });
      await room.localParticipant.publishTrack(track);
      state.screenTrack = track;
      attach(track, room.localParticipant, true);
      track.mediaStreamTrack.addEventListener('ended', () => state.screenTrack && share());
      $('share').textContent = 'Stop sharing';
    } catch (error) {
      status(`Could not share the screen: ${error.message}`);
    }
  }

  if (!Video) {
    status('twilio-video is not installed on this server (run scripts/install).');
    return;
  }
  $('join-form').addEventListener('submit', join);
  $('mute').addEventListener('click', () => toggle('audio', $('mute'), 'Mute', 'Unmute'));
  $('camera').addEventListener('click',
    () => toggle('video', $('camera'), 'Stop camera', 'Start camera'));
  $('share').addEventListener('click', share);
  $('leave').addEventListener('click', () => state.room && state.room.disconnect());
  window.addEventListener('beforeunload', () => state.room && state.room.disconnect());
})();
