/*
 * Copyright (C) 2026 failbackd developers
 * All rights reserved. BSD-2-Clause.
 *
 * Dashboard widget (OPNsense 24.7+ widget API, modelled on sysutils/apcupsd's Apcupsd.js):
 * phase, whether the node is held, the probes blocking the release and the time left in the
 * hold, from /api/failbackd/service/state (`failbackd status --json` through configd).
 */

export default class Failbackd extends BaseTableWidget {
    constructor() {
        super();
        this.tickTimeout = 5;
    }

    getMarkup() {
        let $container = $('<div></div>');
        $container.append(this.createTable('failbackd-table', {headerPosition: 'left'}));
        return $container;
    }

    /**
     * core's BaseWidget has `translations` (filled from Metadata/Failbackd.xml) but no
     * translate method: a missing key shows as itself.
     */
    tr(key) {
        const value = this.translations ? this.translations[key] : undefined;
        return value === undefined ? key : value;
    }

    /**
     * BaseTableWidget.populateRow puts each cell into the DOM as HTML: the values come from the
     * daemon (probe names, reasons), so they go in as text.
     */
    static text(value) {
        const entities = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};
        return String(value).replace(/[&<>"']/g, (c) => entities[c]);
    }

    async onWidgetTick() {
        const data = await this.ajaxCall('/api/failbackd/service/state');
        if (!data || data.error) {
            this.updateTable('failbackd-table', [[this.tr('error'), Failbackd.text((data && data.error) || '?')]]);
            return;
        }
        this.updateTable('failbackd-table', this.makeRows(data.state, Date.now() / 1000));
    }

    /**
     * @param {Object} state `failbackd status --json`
     * @param {number} now unix seconds
     * @returns {Array<Array<string>>} [label, value] rows
     */
    makeRows(state, now) {
        const rows = [[this.tr('phase'), Failbackd.text(state.phase)]];
        let held = this.tr('unknown');
        if (state.demoted === true) {
            held = this.tr('held_yes');
        } else if (state.demoted === false) {
            held = this.tr('not_held');
        }
        rows.push([this.tr('held'), held]);
        const fb = state.failback;
        if (fb) {
            const blockers = fb.blockers.length ? Failbackd.text(fb.blockers.join(', ')) : this.tr('none');
            rows.push([this.tr('blocking'), blockers]);
            const left = Math.max(0, Math.round(fb.hold_deadline - now));
            rows.push([this.tr('time_left'), Failbackd.duration(left)]);
        }
        const down = state.probes.filter((p) => !p.up).map((p) => p.name);
        rows.push([this.tr('probes'), `${state.probes.length - down.length}/${state.probes.length} up`]);
        return rows;
    }

    static duration(seconds) {
        const m = Math.floor(seconds / 60);
        const s = seconds % 60;
        return m > 0 ? `${m}m ${s}s` : `${s}s`;
    }
}
