/*
 * Copyright (C) 2026 failbackd developers
 * All rights reserved. BSD-2-Clause.
 *
 * Services > failbackd > Status: turns `failbackd status --json` (src/status.rs Status) into
 * the rows of the page's three tables. No DOM here, so tests/packaging/check_plugin.py runs it
 * in node; status.volt puts the rows into the page with jQuery (text only, never HTML).
 */

var failbackdStatus = (function () {
    function duration(seconds) {
        seconds = Math.max(0, Math.round(seconds));
        var m = Math.floor(seconds / 60);
        var s = seconds % 60;
        return m > 0 ? m + 'm ' + s + 's' : s + 's';
    }

    /** [label, value] rows: phase, held, demotion, failback, blockers, time left. */
    function summaryRows(state, now) {
        var held = state.demoted === true ? 'yes (demoted)' : state.demoted === false ? 'no' : 'unknown';
        var rows = [
            ['Phase', state.phase],
            ['Held', held],
            ['Backend', state.backend],
            ['Last outcome', state.last_outcome || '-']
        ];
        if (state.measured) {
            // What the backend measured (net.inet.carp.demotion), and how old that is.
            var m = state.measured;
            var text = m.held === true ? 'held' : m.held === false ? 'not held' : 'unknown';
            if (m.demotion != null) {
                text += ', demotion ' + m.demotion;
            }
            if (m.foreign) {
                text += ', not failbackd\'s (left alone)';
            }
            text += ', ' + duration(now - m.at) + ' ago';
            if (state.wanted_demoted != null && state.wanted_demoted !== m.held) {
                text += '; wanted ' + (state.wanted_demoted ? 'held' : 'not held');
            }
            rows.splice(2, 0, ['Measured', text]);
        }
        if (state.failback) {
            var fb = state.failback;
            rows.push(['Failback', '#' + fb.id + ' (' + fb.trigger + ')']);
            rows.push(['Blocking the release', fb.blockers.length ? fb.blockers.join(', ') : 'none']);
            rows.push(['Time left in the hold', duration(fb.hold_deadline - now)]);
        }
        return rows;
    }

    /** One row per probe: name, type, target, up/down, required, blocking, passes/fails, last error. */
    function probeRows(state) {
        var blockers = state.failback ? state.failback.blockers : [];
        return state.probes.map(function (p) {
            return [
                p.name,
                p.type,
                p.target,
                p.up ? 'up' : 'down',
                p.required ? 'yes' : 'no',
                blockers.indexOf(p.name) >= 0 ? 'yes' : 'no',
                p.passes + '/' + p.fails,
                p.last_latency_ms == null ? '-' : p.last_latency_ms.toFixed(1) + ' ms',
                p.last_error || ''
            ];
        });
    }

    /** One row per VHID: vhid@interface and its CARP state. */
    function carpRows(state) {
        return state.carp.map(function (c) {
            return [c.vhid + '@' + c.iface, c.state];
        });
    }

    return {duration: duration, summaryRows: summaryRows, probeRows: probeRows, carpRows: carpRows};
})();

if (typeof module !== 'undefined') {
    module.exports = failbackdStatus;
}
