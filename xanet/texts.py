"""Every user-facing text in Vietnamese and English, keyed by one id: the availability
report, the monthly document, the outage list, the alerts' annotations, service names and
durations (data, no logic).

An id is ``<where>.<what>`` (``report.title``, ``monthly.kpi_head``, ``service.fibre``);
every id has both languages (tests/test_texts.py). A text with ``{fields}`` is a
``str.format`` template. Nothing is imported here, so the ``xanet`` command line can offer
the languages without loading the collector.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Final, Literal

Lang = Literal["vi", "en"]
LANGS: Final[tuple[Lang, ...]] = ("vi", "en")

TEXTS: Final[Mapping[str, Mapping[Lang, str]]] = {
    # service
    "service.fibre": {"vi": "cáp quang", "en": "fibre"},
    "service.broadband": {"vi": "băng rộng", "en": "broadband"},
    "service.mobile_2g": {"vi": "di động 2G", "en": "mobile 2G"},
    "service.mobile_3g": {"vi": "di động 3G", "en": "mobile 3G"},
    "service.mobile_4g": {"vi": "di động 4G", "en": "mobile 4G"},
    # report
    "report.title": {
        "vi": "Khả dụng dịch vụ theo {group}",
        "en": "Service availability by {group}",
    },
    "report.window": {
        "vi": "Kỳ báo cáo: {start} – {end} ({tz})",
        "en": "Window: {start} – {end} ({tz})",
    },
    "report.code": {"vi": "Mã xã", "en": "Commune code"},
    "report.commune": {"vi": "Xã", "en": "Commune"},
    "report.site": {"vi": "Trạm", "en": "Site"},
    "report.site_name": {"vi": "Tên trạm", "en": "Site name"},
    "report.device": {"vi": "Thiết bị", "en": "Device"},
    "report.operator": {"vi": "Nhà mạng", "en": "Operator"},
    "report.group_commune": {"vi": "xã", "en": "commune"},
    "report.group_site": {"vi": "trạm", "en": "site"},
    "report.group_device": {"vi": "thiết bị", "en": "device"},
    "report.group_service": {"vi": "dịch vụ", "en": "service"},
    "report.group_operator": {"vi": "nhà mạng", "en": "operator"},
    "report.service": {"vi": "Dịch vụ", "en": "Service"},
    "report.availability": {"vi": "Khả dụng (%)", "en": "Availability (%)"},
    "report.downtime": {"vi": "Thời gian gián đoạn", "en": "Downtime"},
    "report.downtime_s": {"vi": "Thời gian gián đoạn (giây)", "en": "Downtime (s)"},
    "report.maintenance": {"vi": "Bảo trì", "en": "Maintenance"},
    "report.maintenance_s": {"vi": "Bảo trì (giây)", "en": "Maintenance (s)"},
    "report.outages": {"vi": "Số lần gián đoạn", "en": "Outages"},
    "report.coverage": {"vi": "Độ phủ dữ liệu (%)", "en": "Data coverage (%)"},
    "report.stations": {"vi": "Trạm hoạt động", "en": "Stations up"},
    "report.stations_cell": {
        "vi": "{pct}% (cùng lúc mất tối đa {down}/{total})",
        "en": "{pct}% (at worst {down} of {total} down at once)",
    },
    "report.stations_none_down": {
        "vi": "{pct}% ({total} trạm, không trạm nào mất)",
        "en": "{pct}% ({total} stations, none down)",
    },
    "report.stations_total": {"vi": "Số trạm", "en": "Stations"},
    "report.stations_up": {"vi": "Trạm hoạt động (%)", "en": "Stations up (%)"},
    "report.stations_most_down": {
        "vi": "Số trạm mất cùng lúc tối đa",
        "en": "Most stations down at once",
    },
    "report.met": {"vi": "Đạt mục tiêu", "en": "Target met"},
    "report.yes": {"vi": "có", "en": "yes"},
    "report.no": {"vi": "không", "en": "no"},
    "report.no_data": {"vi": "không có dữ liệu", "en": "no data"},
    "report.insufficient": {"vi": "không đủ dữ liệu", "en": "insufficient data"},
    "report.kpi_title": {
        "vi": "Chỉ tiêu cấp tỉnh (mục tiêu khả dụng {target}%, độ phủ dữ liệu tối thiểu {cov}%)",
        "en": "Province KPIs (availability target {target}%, minimum data coverage {cov}%)",
    },
    "report.kpi": {
        "vi": "Tỷ lệ xã có {service} đạt mục tiêu: {share}% ({met}/{measured} xã đủ dữ liệu)",
        "en": (
            "Share of communes whose {service} met the target: {share}% ({met} of {measured} "
            "communes with enough data)"
        ),
    },
    "report.kpi_none": {
        "vi": "Tỷ lệ xã có {service} đạt mục tiêu: không đủ dữ liệu",
        "en": "Share of communes whose {service} met the target: insufficient data",
    },
    "report.kpi_no_data": {
        "vi": (
            "{count} xã không đủ dữ liệu {service}: không tính vào tỷ lệ, không coi là không đạt."
        ),
        "en": (
            "{count} communes have insufficient {service} data: left out of the share, not counted "
            "as failing."
        ),
    },
    "report.share": {"vi": "Tỷ lệ đạt (%)", "en": "Share met (%)"},
    "report.communes_met": {"vi": "Số xã đạt", "en": "Communes met"},
    "report.communes_failed": {"vi": "Số xã không đạt", "en": "Communes failed"},
    "report.communes_insufficient": {
        "vi": "Số xã không đủ dữ liệu",
        "en": "Communes with insufficient data",
    },
    "report.communes_no_data": {"vi": "Số xã không có dữ liệu", "en": "Communes without data"},
    "report.target": {"vi": "Mục tiêu (%)", "en": "Target (%)"},
    "report.note": {
        "vi": (
            "Khả dụng = thời gian hoạt động / thời gian đã biết trạng thái; thời gian không có dữ "
            "liệu không tính là gián đoạn mà giảm độ phủ dữ liệu; thời gian bảo trì đã khai báo "
            "không tính là hoạt động hay gián đoạn và không tính vào độ phủ."
        ),
        "en": (
            "Availability = up time / time with known state; time without data is never counted as "
            "downtime, it lowers the data coverage instead; declared maintenance is neither up nor "
            "down and does not lower the coverage."
        ),
    },
    # duration
    "duration.seconds": {"vi": "{s} giây", "en": "{s}s"},
    "duration.minutes": {"vi": "{m} phút {s:02d} giây", "en": "{m}m {s:02d}s"},
    "duration.hours": {"vi": "{h} giờ {m:02d} phút", "en": "{h}h {m:02d}m"},
    "duration.days": {"vi": "{d} ngày {h:02d} giờ {m:02d} phút", "en": "{d}d {h:02d}h {m:02d}m"},
    # monthly
    "monthly.doc_title": {
        "vi": "Báo cáo khả dụng hạ tầng viễn thông",
        "en": "Telecommunications infrastructure availability report",
    },
    "monthly.subtitle": {
        "vi": "Tỉnh {province} – {period}",
        "en": "{province} province – {period}",
    },
    "monthly.month": {"vi": "tháng {m:02d}/{y}", "en": "{month_name} {y}"},
    "monthly.period": {"vi": "{start} – {end}", "en": "{start} – {end}"},
    "monthly.generated": {"vi": "Lập lúc {time}.", "en": "Generated {time}."},
    "monthly.kpi_head": {
        "vi": "1. Chỉ tiêu của tỉnh so với mục tiêu đã công bố",
        "en": "1. Province KPIs against the declared targets",
    },
    "monthly.kpi_intro": {
        "vi": (
            "Một xã đạt khi khả dụng của dịch vụ đạt mục tiêu khả dụng và độ phủ dữ liệu từ {cov}% "
            "trở lên; xã không đủ dữ liệu được tính riêng, không coi là đạt hay không đạt."
        ),
        "en": (
            "A commune meets the target when the service's availability reaches the availability "
            "target with at least {cov}% data coverage; communes with insufficient data are "
            "counted apart, neither met nor failed."
        ),
    },
    "monthly.service": {"vi": "Dịch vụ", "en": "Service"},
    "monthly.declared": {"vi": "Mục tiêu công bố", "en": "Declared target"},
    "monthly.declared_cell": {
        "vi": "{pct}% số xã đạt khả dụng ≥ {avail}%",
        "en": "{pct}% of communes at ≥ {avail}% availability",
    },
    "monthly.measured": {"vi": "Kết quả đo", "en": "Measured"},
    "monthly.communes": {"vi": "Số xã đạt / đủ dữ liệu", "en": "Communes met / with data"},
    "monthly.insufficient": {"vi": "Không đủ dữ liệu", "en": "Insufficient data"},
    "monthly.coverage": {"vi": "Độ phủ dữ liệu", "en": "Data coverage"},
    "monthly.verdict": {"vi": "Đánh giá", "en": "Verdict"},
    "monthly.v_met": {"vi": "Đạt", "en": "Met"},
    "monthly.v_failed": {"vi": "Không đạt", "en": "Not met"},
    "monthly.v_insufficient": {"vi": "Không đủ dữ liệu", "en": "Insufficient data"},
    "monthly.v_none": {"vi": "Không có mục tiêu", "en": "No target declared"},
    "monthly.trend_head": {"vi": "2. Khả dụng theo ngày", "en": "2. Availability per day"},
    "monthly.trend_title": {
        "vi": "Khả dụng trung bình các xã theo ngày (%)",
        "en": "Mean availability of the communes per day (%)",
    },
    "monthly.trend_y": {"vi": "Khả dụng (%)", "en": "Availability (%)"},
    "monthly.target_line": {"vi": "mục tiêu {pct}%", "en": "target {pct}%"},
    "monthly.worst_head": {
        "vi": "3. Mười xã có khả dụng thấp nhất",
        "en": "3. The ten communes with the lowest availability",
    },
    "monthly.worst_intro": {
        "vi": "Mỗi xã một dòng: dịch vụ kém nhất của xã trong kỳ.",
        "en": "One line per commune: its worst service in the period.",
    },
    "monthly.code": {"vi": "Mã xã", "en": "Code"},
    "monthly.commune": {"vi": "Xã", "en": "Commune"},
    "monthly.availability": {"vi": "Khả dụng (%)", "en": "Availability (%)"},
    "monthly.downtime": {"vi": "Gián đoạn", "en": "Downtime"},
    "monthly.outages": {"vi": "Số lần", "en": "Outages"},
    "monthly.stations": {"vi": "Trạm hoạt động", "en": "Stations up"},
    "monthly.status": {"vi": "Đạt mục tiêu", "en": "Target met"},
    "monthly.operator_head": {"vi": "4. Theo nhà mạng", "en": "4. Per operator"},
    "monthly.operator_intro": {
        "vi": (
            "Tổng thời gian của các trạm của từng nhà mạng; trạm dùng chung được tính cho mỗi nhà "
            "mạng."
        ),
        "en": "Station time of each operator's sites; a shared site counts for each operator.",
    },
    "monthly.operator": {"vi": "Nhà mạng", "en": "Operator"},
    "monthly.timeline_head": {"vi": "5. Diễn biến sự cố", "en": "5. Outage timeline"},
    "monthly.timeline_title": {
        "vi": "Sự cố theo xã (các xã bị gián đoạn lâu nhất)",
        "en": "Outages per commune (the communes down longest)",
    },
    "monthly.timeline_x_days": {"vi": "Ngày trong kỳ", "en": "Day of the period"},
    "monthly.timeline_x_hours": {"vi": "Giờ trong kỳ", "en": "Hour of the period"},
    "monthly.timeline_x_minutes": {"vi": "Phút trong kỳ", "en": "Minute of the period"},
    "monthly.timeline_empty": {"vi": "Không có sự cố", "en": "No outage"},
    "monthly.outages_head": {"vi": "6. Danh sách sự cố", "en": "6. Outages"},
    "monthly.outages_more": {
        "vi": (
            "{shown} sự cố dài nhất trong tổng số {count}; danh sách đầy đủ: xanet report outages "
            "{args}"
        ),
        "en": (
            "The {shown} longest of {count} outages; the full list: xanet report outages {args}"
        ),
    },
    "monthly.footer_head": {"vi": "Dữ liệu và định nghĩa", "en": "Data and definitions"},
    "monthly.footer_coverage": {
        "vi": (
            "Độ phủ dữ liệu của kỳ: {cov}% thời gian đã biết trạng thái (trên tổng thời gian của "
            "{n} cặp xã–dịch vụ, trừ bảo trì đã khai báo {maint})."
        ),
        "en": (
            "Data coverage of the period: {cov}% of the time with a known state (over {n} "
            "commune-services, declared maintenance of {maint} left out)."
        ),
    },
    "monthly.footer_known": {
        "vi": "Dữ liệu đầy đủ đến {time}.",
        "en": "Data complete up to {time}.",
    },
    "monthly.sign_prepared": {"vi": "Người lập", "en": "Prepared by"},
    "monthly.sign_approved": {"vi": "Thủ trưởng đơn vị", "en": "Approved by"},
    "monthly.sign_hint": {"vi": "(ký, ghi rõ họ tên)", "en": "(signature, full name)"},
    "monthly.none": {"vi": "không có", "en": "none"},
    "monthly.page_label": {"vi": "Trang", "en": "Page"},
    "monthly.page_of": {"vi": "/", "en": "of"},
    # outages
    "outages.title": {"vi": "Danh sách sự cố", "en": "Outages"},
    "outages.start": {"vi": "Bắt đầu", "en": "Start"},
    "outages.end": {"vi": "Kết thúc", "en": "End"},
    "outages.duration": {"vi": "Thời lượng", "en": "Duration"},
    "outages.root": {"vi": "Nguyên nhân gốc (trạm)", "en": "Root cause (site)"},
    "outages.cause": {"vi": "Loại", "en": "Kind"},
    "outages.commune": {"vi": "Xã", "en": "Commune"},
    "outages.sites": {"vi": "Trạm bị ảnh hưởng", "en": "Sites affected"},
    "outages.services": {"vi": "Dịch vụ bị ảnh hưởng", "en": "Services affected"},
    "outages.alerted": {"vi": "Đã cảnh báo", "en": "Alerted"},
    "outages.maintenance": {"vi": "Bảo trì", "en": "Maintenance"},
    "outages.ongoing": {"vi": "đang diễn ra", "en": "ongoing"},
    "outages.yes": {"vi": "có", "en": "yes"},
    "outages.no": {"vi": "không", "en": "no"},
    "outages.transmission": {"vi": "truyền dẫn", "en": "transmission"},
    "outages.site": {"vi": "tại trạm", "en": "site"},
    "outages.power": {"vi": "mất điện", "en": "power"},
    "outages.none": {"vi": "Không có sự cố trong kỳ.", "en": "No outage in the window."},
    "outages.count": {
        "vi": "{count} sự cố, tổng thời gian {total}.",
        "en": "{count} outage(s), {total} in all.",
    },
    # alert: the annotations of outage alerts (collector/alertsummary.py)
    "alert.where": {
        "vi": "trạm {site} ({site_name}, {commune_name})",
        "en": "site {site} ({site_name}, {commune_name})",
    },
    "alert.site": {
        "vi": (
            "Mất kết nối trạm {site} ({site_name}, {commune_name}): đường truyền lên bị mất "
            "từ {since}"
        ),
        "en": "Site {site} ({site_name}, {commune_name}) cut off: uplink down since {since}",
    },
    "alert.site_children": {
        "vi": "; {count} trạm phía sau bị ảnh hưởng: {children}",
        "en": "; {count} site(s) behind it affected: {children}",
    },
    "alert.device": {
        "vi": "Thiết bị {device} tại {where} không hoạt động từ {since} ({services})",
        "en": "Device {device} at {where} down since {since} ({services})",
    },
    "alert.element": {
        "vi": "Cổng {interface} của thiết bị {device} tại {where} bị mất từ {since} ({services})",
        "en": "Interface {interface} of {device} at {where} down since {since} ({services})",
    },
    "alert.agent": {
        "vi": (
            "Agent giám sát {agent} ({where}) im lặng từ {since}: trạng thái của trạm {sites} "
            "KHÔNG XÁC ĐỊNH (không tính là mất dịch vụ)"
        ),
        "en": (
            "Monitoring agent {agent} ({where}) silent since {since}: the state of site(s) "
            "{sites} is UNKNOWN (not counted as down)"
        ),
    },
    "alert.cause": {"vi": "; nguyên nhân: {cause}", "en": "; cause: {cause}"},
    # cause: why an outage happened (alerts, outage list, report; collector/outages.py)
    "cause.power": {"vi": "mất điện", "en": "power"},
    "cause.transmission": {"vi": "truyền dẫn", "en": "transmission"},
    "cause.site": {"vi": "tại trạm", "en": "site"},
    # power: the early warning of a site on battery (collector/powertext.py)
    "power.on_battery": {
        "vi": "{commune_name}: {site_name} mất điện lưới, chạy ắc quy; {services} có nguy cơ "
              "mất {left}",
        "en": "{commune_name}: {site_name} on battery, {services} at risk {left}",
    },
    "power.battery_low": {
        "vi": "{commune_name}: {site_name} ắc quy yếu; {services} có nguy cơ mất {left}",
        "en": "{commune_name}: {site_name} battery low, {services} at risk {left}",
    },
    "power.left": {"vi": "sau ~{minutes} phút", "en": "in ~{minutes} min"},
    "power.no_minutes": {"vi": "(chưa rõ thời gian còn lại)", "en": "(time left unknown)"},
    "power.down": {
        "vi": "{commune_name}: {site_name} mất kết nối từ {since} do mất điện (chạy ắc quy từ "
              "{battery_since}); {services} bị mất",
        "en": "{commune_name}: {site_name} down since {since}: power (on battery since "
              "{battery_since}), {services} lost",
    },
    "power_service.fibre": {"vi": "cáp quang", "en": "fibre"},
    "power_service.broadband": {"vi": "băng rộng", "en": "broadband"},
    "power_service.mobile_2g": {"vi": "2G", "en": "2G"},
    "power_service.mobile_3g": {"vi": "3G", "en": "3G"},
    "power_service.mobile_4g": {"vi": "4G", "en": "4G"},
    "condition.active": {"vi": "mất", "en": "down"},
    "condition.unknown": {"vi": "không xác định", "en": "unknown"},
    "condition.clear": {"vi": "hoạt động", "en": "up"},
    # monitoring: monitoring-fault alerts (collector/monitoring.py)
    "monitoring.summary": {
        "vi": (
            "lỗi giám sát: {device}: {cause}, {check} (trạm {site}, {site_name}, "
            "{commune_name}; từ {since}; trạng thái thiết bị KHÔNG XÁC ĐỊNH, không tính là "
            "mất dịch vụ)"
        ),
        "en": (
            "monitoring broken: {device}: {cause}, {check} (site {site}, {site_name}, "
            "{commune_name}; since {since}; the device's state is UNKNOWN, not counted as "
            "down)"
        ),
    },
    "monitoring.check.snmp_silent": {
        "vi": (
            "thiết bị trả lời ping nhưng không trả lời SNMP: kiểm tra community SNMP (v2c) "
            "và ACL / tường lửa SNMP của thiết bị cho địa chỉ của agent"
        ),
        "en": (
            "the host answers ping but not SNMP: check the SNMP community (v2c) and the "
            "device's SNMP ACL / firewall for the agent's address"
        ),
    },
    "monitoring.check.auth": {
        "vi": (
            "kiểm tra người dùng SNMPv3, giao thức và khóa xác thực / mã hóa trong cấu hình "
            "agent so với thiết bị"
        ),
        "en": (
            "check the SNMPv3 user, the auth/priv protocols and keys in the agent config "
            "against the device"
        ),
    },
    "monitoring.check.access": {
        "vi": "kiểm tra SNMP view / ACL của thiết bị: không đọc được các cột cần giám sát",
        "en": "check the device's SNMP view / ACL: the polled columns are not readable",
    },
    "monitoring.check.resolve": {
        "vi": "kiểm tra tên DNS của thiết bị trong cấu hình agent và máy chủ DNS của agent",
        "en": "check the device's DNS name in the agent config and the agent's resolver",
    },
    "monitoring.check.protocol": {
        "vi": "câu trả lời SNMP của thiết bị sai định dạng: kiểm tra firmware của thiết bị",
        "en": "the device's SNMP answers are malformed: check its firmware",
    },
    "monitoring.check.config": {
        "vi": "kiểm tra cấu hình agent cho thiết bị này",
        "en": "check the agent config for this device",
    },
    "monitoring.check.limit": {
        "vi": (
            "câu trả lời của thiết bị vượt giới hạn của agent cho mỗi thiết bị: kiểm tra "
            "các bảng của thiết bị và giới hạn của agent"
        ),
        "en": (
            "the device's answers exceed the agent's per-device limits: check its tables "
            "and the agent's limits"
        ),
    },
    "monitoring.check.other": {
        "vi": "xem nhật ký của agent cho thiết bị này",
        "en": "check the agent's log for this device",
    },
    # fault: agent-fault alerts (collector/faults.py)
    "fault.duplicate_agent": {
        "vi": (
            "agent {agent} (trạm {site}) đang chạy ở hai nơi: giữ phiên chạy {owner}, từ chối "
            "phiên chạy {refused}"
        ),
        "en": (
            "agent {agent} (site {site}) runs twice: instance {owner} is kept, instance "
            "{refused} is refused"
        ),
    },
    "fault.clock_skew": {
        "vi": "agent {agent} (trạm {site}): đồng hồ {state} hơn đồng hồ của collector "
              "{offset_s:.0f} giây",
        "en": "agent {agent} (site {site}): clock {state} of the collector's by {offset_s:.0f}s",
    },
    "fault.clock_ahead": {"vi": "nhanh", "en": "ahead"},
    "fault.clock_behind": {"vi": "chậm", "en": "behind"},
    "fault.cardinality": {
        "vi": (
            "{what} (trạm {site}) gửi quá {limit} chuỗi dữ liệu mới mỗi {window_s:.0f} giây: "
            "các chuỗi mới bị từ chối"
        ),
        "en": (
            "{what} (site {site}) brings more than {limit} new series per {window_s:.0f}s: "
            "new series refused"
        ),
    },
    "fault.what_device": {"vi": "thiết bị {device}", "en": "device {device}"},
    "fault.what_agent": {"vi": "agent {agent}", "en": "agent {agent}"},
}

#: English month names: the ``{month_name}`` of ``monthly.month`` (Vietnamese numbers them).
MONTHS_EN: Final = ("January", "February", "March", "April", "May", "June", "July",
                    "August", "September", "October", "November", "December")


def text(key: str, lang: Lang) -> str:
    """The text ``key`` in ``lang`` (KeyError: no such text)."""
    return TEXTS[key][lang]


@cache
def table(prefix: str, lang: Lang) -> Mapping[str, str]:
    """The texts ``<prefix>.<what>`` in ``lang``, by ``<what>``."""
    head = prefix + "."
    return MappingProxyType({key.removeprefix(head): texts[lang]
                             for key, texts in TEXTS.items() if key.startswith(head)})
