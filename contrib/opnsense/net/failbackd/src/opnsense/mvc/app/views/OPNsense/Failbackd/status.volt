{#
 # Services > failbackd > Status: polls /api/failbackd/service/state every 5 s (as
 # sysutils/apcupsd's status page polls its status), renders it with failbackd_status.js.
 #}
<script src="{{ cache_safe('/ui/js/failbackd_status.js') }}"></script>
<script>
    function fillTable(id, rows) {
        const $body = $('#' + id + ' tbody').empty();
        rows.forEach(function (row) {
            const $tr = $('<tr/>');
            row.forEach(function (cell) { $tr.append($('<td/>').text(cell)); });
            $body.append($tr);
        });
    }

    function refreshStatus() {
        ajaxGet('/api/failbackd/service/state', {}, function (data) {
            if (!data || data.error) {
                $('#failbackd-error').text(data ? data.error : '{{ lang._('No answer') }}').show();
            } else {
                $('#failbackd-error').hide();
                const now = Date.now() / 1000;
                fillTable('failbackd-summary', failbackdStatus.summaryRows(data.state, now));
                fillTable('failbackd-probes', failbackdStatus.probeRows(data.state));
                fillTable('failbackd-carp', failbackdStatus.carpRows(data.state));
            }
            setTimeout(refreshStatus, 5000);
        });
    }

    function post(url, data) {
        ajaxCall(url, data, function (result) {
            // status is "failed" when the CLI refused (e.g. required probes down): show its reason.
            $('#failbackd-message').text(result.message || '')
                .toggleClass('alert-danger', result.status === 'failed')
                .toggleClass('alert-info', result.status !== 'failed').show();
            refreshStatus();
        });
    }

    $(document).ready(function () {
        refreshStatus();
        $('#btn-hold').click(function () { post('/api/failbackd/service/hold', {}); });
        $('#btn-release').click(function () {
            BootstrapDialog.show({
                type: BootstrapDialog.TYPE_WARNING,
                title: '{{ lang._('Release the node') }}',
                message: '{{ lang._('The node becomes CARP master again. Force releases it even while required probes are down.') }}',
                buttons: [{
                    label: '{{ lang._('Release') }}',
                    action: function (dlg) { dlg.close(); post('/api/failbackd/service/release', {force: '0'}); }
                }, {
                    label: '{{ lang._('Force release') }}',
                    cssClass: 'btn-danger',
                    action: function (dlg) { dlg.close(); post('/api/failbackd/service/release', {force: '1'}); }
                }, {
                    label: '{{ lang._('Cancel') }}',
                    action: function (dlg) { dlg.close(); }
                }]
            });
        });
    });
</script>

<div class="content-box">
    <div id="failbackd-error" class="alert alert-warning" style="display:none"></div>
    <div id="failbackd-message" class="alert alert-info" style="display:none"></div>
    <table id="failbackd-summary" class="table table-condensed"><tbody></tbody></table>
    <h3>{{ lang._('Probes') }}</h3>
    <table id="failbackd-probes" class="table table-condensed table-striped">
        <thead><tr>
            <th>{{ lang._('Name') }}</th><th>{{ lang._('Type') }}</th><th>{{ lang._('Target') }}</th>
            <th>{{ lang._('State') }}</th><th>{{ lang._('Required') }}</th><th>{{ lang._('Blocking') }}</th>
            <th>{{ lang._('Passes/fails') }}</th><th>{{ lang._('Latency') }}</th><th>{{ lang._('Last error') }}</th>
        </tr></thead>
        <tbody></tbody>
    </table>
    <h3>{{ lang._('CARP') }}</h3>
    <table id="failbackd-carp" class="table table-condensed">
        <thead><tr><th>{{ lang._('VHID') }}</th><th>{{ lang._('State') }}</th></tr></thead>
        <tbody></tbody>
    </table>
    <div class="col-md-12">
        <button class="btn btn-primary" id="btn-hold">{{ lang._('Hold') }}</button>
        <button class="btn btn-default" id="btn-release">{{ lang._('Release') }}</button>
    </div>
</div>
